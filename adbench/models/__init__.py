"""The generative models behind the methods, and the one training loop they share.

``training`` (configuration, epoch loop), ``resume`` (interrupted trainings), ``checkpoints``
(trained models on disk), ``flow_matching`` (conditional flow matching: path, network, ODE solver,
model) and ``flows`` (conditional normalizing flows). Importing these
configuration modules does not import torch; the model modules do.
"""
