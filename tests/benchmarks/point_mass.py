"""What a point mass in one feature does to the data-versus-template classifier.

Not a unit test. Version 2 of the synthetic generator clipped the lowest 0.75% of the background's
delta_mj to exactly 0: a point mass real events lack. A generative template reproduces such a spike
only in part (a flow or an ODE puts a narrow blob there, of which the scaler's clip sends a share to 0).
This script emulates the artefact on today's generator and measures the classifier's sensitivity with
an otherwise perfect template (held-out true background, the idealized reference):

- ``no point mass``: data and template as generated (the idealized reference);
- ``exact``: the lowest ``--fraction`` of delta_mj set to 0 in data, template and test set alike;
- ``half`` / ``none``: the same in data and test set, but only half / none of the template's events
  moved to 0 (the others keep their small continuous values)::

    .venv/bin/python tests/benchmarks/point_mass.py --seeds 0,1,2 --output reports/point-mass-cpu.json

Prints one JSON line per (seed, template): max SIC, SIC at FPR 1e-3 and 1e-4, AUC.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

TEMPLATES = {"no point mass": None, "exact": 1.0, "half": 0.5, "none": 0.0}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--sr", default="3.3,3.7")
    parser.add_argument("--n-sig", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--feature", default="delta_mj")
    parser.add_argument("--fraction", type=float, default=0.0075, help="background share moved to 0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the rows")
    return parser.parse_args(argv)


def with_point_mass(x: np.ndarray, column: int, threshold: float, label: np.ndarray | None = None) -> np.ndarray:
    """(n, d) features -> a copy whose background events below ``threshold`` in ``column`` sit at 0."""
    out = x.copy()
    low = out[:, column] < threshold
    if label is not None:
        low &= label == 0
    out[low, column] = 0.0
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    import torch

    from adbench.arguments import make_windows, parse_windows
    from adbench.data.cards import load_dataset
    from adbench.environment import environment_summary
    from adbench.evaluate import ClassifierConfig, ClassifierEnsemble
    from adbench.metrics import sensitivity

    torch.set_num_threads(args.threads)
    (window,) = make_windows(parse_windows(args.sr, None))
    dataset = load_dataset(args.dataset)
    column = dataset.features.index(args.feature)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        split = dataset.split(args.n_sig, seed, [window])
        data = split.data.select(window.in_sr(split.data.m))
        truth, test = split.truth_in(window).background, split.test_in(window)
        threshold = float(np.quantile(truth.x[:, column], args.fraction))
        rng = np.random.default_rng(seed)
        for name, kept in TEMPLATES.items():
            data_x, test_x, template = data.x, test.x, truth.x
            if kept is not None:
                data_x = with_point_mass(data.x, column, threshold, data.label)
                test_x = with_point_mass(test.x, column, threshold, test.label)
                moved = with_point_mass(truth.x, column, threshold)
                keep = rng.random(len(template)) < kept
                template = np.where(keep[:, None], moved, truth.x)
            started = time.perf_counter()
            classifier = ClassifierEnsemble(ClassifierConfig(), seed).fit(data_x, template)
            scores = sensitivity(test.label, classifier.predict(test_x))
            row = {"dataset": args.dataset, "window": str(window), "n_sig": args.n_sig, "seed": seed,
                   "feature": args.feature, "fraction": args.fraction, "template": name,
                   **{key: round(value, 4) for key, value in scores.items()},
                   "seconds": round(time.perf_counter() - started, 1)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        summary = {"command": "tests/benchmarks/point_mass.py", "environment": environment_summary("cpu"), "rows": rows}
        args.output.write_text(json.dumps(summary, indent=1, default=str))
    return rows


if __name__ == "__main__":
    main()
