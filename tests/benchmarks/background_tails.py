"""Where a saved background flow's scaled features leave the spline's range, and what that costs.

Not a unit test. zuko's spline flow (``FlowConfig.kind = "nsf"``) is the identity outside [-bound, bound]
of the scaled features (``FlowConfig.spline_bound``, 5 by default), so events beyond get the base
Gaussian's tail as their density. For a flow saved by
``background_kl.py --save-flows DIR`` this prints, on the test set's SR background of ``synthetic``: per
feature the range of the scaled values, how many events lie beyond the bound and their mean
ln q - ln p_bkg; the KL from the generator with and without those events::

    .venv/bin/python tests/benchmarks/background_tails.py DIR/nsig1000-seed1 --seed 1
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flow", help="a folder written by ConditionalFlow.save")
    parser.add_argument("--seed", type=int, required=True, help="the split seed the flow was trained on")
    parser.add_argument("--n-sig", type=int, default=1000)
    parser.add_argument("--sr", default="3.3,3.7")
    args = parser.parse_args(argv)
    import torch

    from adbench.arguments import make_windows, parse_windows
    from adbench.data.cards import load_dataset
    from adbench.data.synthetic import load_calibration
    from adbench.models.flows import ConditionalFlow

    torch.set_num_threads(1)
    (window,) = make_windows(parse_windows(args.sr, None))
    test = load_dataset("synthetic").split(args.n_sig, args.seed, [window]).test_in(window)
    background = test.select(test.label == 0)
    flow = ConditionalFlow.load(args.flow)
    bound = flow.spline_bound_
    z = flow.scaler_.transform(background.x)
    log_ratio = load_calibration().background.log_prob(background.m, background.x) - flow.log_prob(
        background.x, background.m)
    for j, name in enumerate(background.features):
        beyond = np.abs(z[:, j]) > bound
        mean = f"{log_ratio[beyond].mean():.2f}" if beyond.any() else "-"
        print(f"{name}: scaled {z[:, j].min():.2f} to {z[:, j].max():.2f}; {beyond.sum()} events beyond "
              f"+-{bound:g}, their mean ln q/p {mean}")
    inside = (np.abs(z) <= bound).all(axis=1)
    print(f"KL {log_ratio.mean():.4f}; without the {(~inside).sum()} events ({1 - inside.mean():.2%}) beyond "
          f"the bound in any feature {log_ratio[inside].mean():.4f}")


if __name__ == "__main__":
    main()
