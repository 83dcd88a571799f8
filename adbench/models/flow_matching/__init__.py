"""Conditional flow matching, in small pieces as in facebookresearch/flow_matching.

- ``configs``: the network and ODE-solver settings (no torch import).
- ``path``: the probability path ``x_t = t x1 + (1 - (1 - sigma) t) x0`` and the CFM loss.
- ``network``: the velocity field ``v(x | t, m)`` (an ``nn.Module``) with its context features split out.
- ``solver``: ODE integration t = 0 -> 1 with torchdiffeq or zuko.
- ``model``: ``FlowMatcher``, a trained model of p(x | m) with its preprocessing, sampling modes
  (direct, linear or context interpolation between two anchor masses) and checkpoints.
"""
