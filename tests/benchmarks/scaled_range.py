"""How far a dataset's SR events reach in the flows' scaled features, against a spline flow's range.

Not a unit test. The normalizing-flow family models features after ``LogitScaler`` (min/max -> logit ->
standardise); a spline flow transforms [-bound, bound] of that space and is the identity outside
(``FlowConfig.spline_bound``). For each dataset this fits the scaler as ANODE and R-ANODE do (on all the
data of the split) and prints per feature the largest |scaled value| of the SR's data and test events,
the shares beyond 5 (zuko's default bound) and 10, and the scaler's whole range (what
``spline_bound = "cover"`` spans)::

    .venv/bin/python tests/benchmarks/scaled_range.py --datasets synthetic,lhcolike,lhco-100k
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="synthetic,lhcolike,lhco-100k")
    parser.add_argument("--sr", default="3.3,3.7")
    parser.add_argument("--n-sig", type=int, default=1000, help="injected signal (datasets that inject it)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from adbench.arguments import make_windows, parse_windows
    from adbench.data.cards import load_dataset
    from adbench.errors import DataError
    from adbench.preprocessing import LogitScaler

    (window,) = make_windows(parse_windows(args.sr, None))
    for name in args.datasets.split(","):
        try:
            dataset = load_dataset(name)
        except DataError as error:
            print(f"{name}: skipped ({error})")
            continue
        split = dataset.split(args.n_sig, args.seed, [window])
        data = split.data
        scaler = LogitScaler().fit(data.x)
        sr_events = np.vstack([data.x[window.in_sr(data.m)], split.test_in(window).x])
        reach = np.abs(scaler.transform(sr_events))
        low, high = scaler.scaled_range()
        print(f"{name}: {len(sr_events)} SR events (data and test), scaler fitted on {len(data)} events")
        for j, feature in enumerate(data.features):
            print(f"  {feature:10s} largest |z| {reach[:, j].max():5.2f}; beyond 5 {(reach[:, j] > 5).mean():.4%}, "
                  f"beyond 10 {(reach[:, j] > 10).mean():.4%}; scaler range {low[j]:.1f} to {high[j]:.1f}")
        print(f"  any feature: beyond 5 {(reach > 5).any(axis=1).mean():.4%}, beyond 10 "
              f"{(reach > 10).any(axis=1).mean():.4%}")


if __name__ == "__main__":
    main()
