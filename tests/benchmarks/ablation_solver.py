"""What the ODE solver and SIGMA's anchors do to the flow-matching templates: one shared fit, many samplers.

Not a unit test. Trains the all-data model once (``--profile``, default ``fast``) on a dataset at one
N_sig and seed, then draws the SR template of vdata, sigma-context and sigma-linear with each solver
and, for the two SIGMA methods, each anchor offset (``--anchor-offsets``: the anchors' distance from
the SR edges as a fraction of its width; the published 3.2 / 3.8 TeV for 3.3-3.7 are 0.25), and
prints, per (method, solver, offset), the sampling time, the fidelity AUC against the true SR background
with its distance from the calibrated null, and the per-feature chi2/ndf of the template's histogram
against the background's (the report's "template mismodelling per feature")::

    .venv/bin/python tests/benchmarks/ablation_solver.py --output reports/ablation-solver-cpu.json

The fit is kept in ``--cache`` (a pickle) so that a rerun with other solvers does not retrain.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path

from _fit_cache import CACHE_HELP, cache_key, cached_fit

#: Solver name -> SolverConfig keywords.
SOLVERS = {
    "rk4x6": {"method": "rk4", "steps": 6},
    "rk4x20": {"method": "rk4", "steps": 20},
    "dopri5": {"method": "dopri5", "atol": 1e-5, "rtol": 1e-5},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--n-sig", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solvers", default=",".join(SOLVERS), help=f"comma-separated, of {', '.join(SOLVERS)}")
    parser.add_argument("--methods", default="vdata,sigma-context,sigma-linear")
    parser.add_argument("--anchor-offsets", default="0.25",
                        help="comma-separated anchor offsets (fractions of the SR width) for the SIGMA methods")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=None, help=CACHE_HELP)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the rows")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    unknown = set(args.solvers.split(",")) - set(SOLVERS)
    if unknown:
        sys.exit(f"unknown solver(s) {', '.join(sorted(unknown))}; choose from {', '.join(SOLVERS)}")
    import numpy as np
    import torch

    from adbench.data.cards import load_dataset
    from adbench.environment import device_name, git_revision
    from adbench.evaluate import auc_null, feature_histograms, two_sample_auc
    from adbench.masses import histogram_masses
    from adbench.methods.presets import load_preset
    from adbench.methods.registry import get_method_class
    from adbench.models.flow_matching.configs import SolverConfig
    from adbench.report.feature_fidelity import feature_chi2_per_ndf
    from adbench.windows import Window

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    window = Window()
    offsets = [float(v) for v in args.anchor_offsets.split(",")]
    split = dataset.split(args.n_sig, args.seed, [window])
    sr = split.data.in_range(window.low, window.high)
    background = split.test_in(window).background().x
    params = load_preset("vdata", args.profile).params
    unfitted = get_method_class("vdata")(settings=params, seed=args.seed)
    shared, fit_seconds = cached_fit(args.cache, cache_key(dataset, args.n_sig, args.seed, unfitted.fit_signature()),
                                     lambda: unfitted.fit(split.data, None))
    masses = histogram_masses(sr.m, window, 3 * len(sr), np.random.default_rng(args.seed))
    null = auc_null(len(masses), len(background))
    rows = []
    for name in args.methods.split(","):
        # a fresh model of each method on the shared fit: a cached fit may be another method's object
        model = get_method_class(name)(settings=params, seed=args.seed).share_fit_from(shared)
        for solver, offset in itertools.product(args.solvers.split(","), offsets[:1] if name == "vdata" else offsets):
            model.config = dataclasses.replace(model.config, solver=SolverConfig(**SOLVERS[solver]))
            anchored = dataclasses.replace(window, anchor_offset=offset)
            started = time.perf_counter()
            template = model.sample(masses, anchored)
            seconds = time.perf_counter() - started
            auc = two_sample_auc(template, background, args.seed)
            chi2 = feature_chi2_per_ndf(feature_histograms(sr, template, background))
            row = {"method": name, "solver": solver, "anchor_offset": None if name == "vdata" else offset,
                   "anchors": None if name == "vdata" else [round(a, 4) for a in anchored.anchors],
                   "sample_s": round(seconds, 1), "fidelity_auc": round(auc, 4),
                   "null_sigmas": round(null.sigmas(auc), 1), "chi2_ndf": {f: round(v, 2) for f, v in chi2.items()}}
            print(json.dumps(row), flush=True)
            rows.append(row)
    if args.output is not None:
        args.output.write_text(json.dumps({
            "dataset": dataset.name, "profile": args.profile, "n_sig": args.n_sig, "seed": args.seed,
            "window": str(window), "template_events": len(masses), "test_background": len(background),
            "fit_s": fit_seconds, "threads": args.threads, "device": device_name("cpu"),
            "git_revision": git_revision(), "rows": rows,
        }, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
