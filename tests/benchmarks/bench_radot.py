"""RAD-OT per-SR time against the batch size and the solver (plain script, not collected by pytest).

The per-SR time is what the harness times for a per-window template method: ``fit`` (sidebands ->
quantile transform -> OT pairing) plus ``sample`` (dijet-fit masses + interpolation), with the device
synchronised. Optionally the template fidelity AUC (template vs true SR background) and the SIC at
FPR 1e-3 of the shared classifier (SR data vs template).

    .venv/bin/python tests/benchmarks/bench_radot.py                       # 1.1M synthetic, emd, CPU
    .venv/bin/python tests/benchmarks/bench_radot.py --solvers emd,sinkhorn --device cuda \
        --batch-sizes 1000,3000,10000 --n-jobs -1 --fidelity --sic --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Any

import numpy as np

from adbench.masses import sample_masses
from adbench.methods.radot import RadOT
from adbench.timing import synchronize
from adbench.windows import Window


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-background", type=int, default=1_000_000, help="synthetic background events")
    parser.add_argument("--n-signal", type=int, default=100_000, help="synthetic signal pool")
    parser.add_argument("--n-reference", type=int, default=500_000, help="held-out background (test set)")
    parser.add_argument("--n-sig", type=int, default=3000, help="injected signal events")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--solvers", default="emd", help="comma list of emd,sinkhorn")
    parser.add_argument("--batch-sizes", type=_ints, default=[1000, 2000, 3000])
    parser.add_argument("--balance", default="upsample", choices=["upsample", "subsample"])
    parser.add_argument("--batch-order", default="random", choices=["random", "projection"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-jobs", type=int, default=1, help="threads for emd batches (-1: all cores)")
    parser.add_argument("--sinkhorn-reg", type=float, default=0.01)
    parser.add_argument("--sinkhorn-max-iter", type=int, default=1000)
    parser.add_argument("--sinkhorn-pairs", default="sample", choices=["sample", "argmax"])
    parser.add_argument("--oversampling", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats per setting (the minimum is kept)")
    parser.add_argument("--fidelity", action="store_true", help="also the template-vs-true-background AUC")
    parser.add_argument("--sic", action="store_true", help="also SIC at FPR 1e-3 of the fast classifier")
    parser.add_argument("--idealized", action="store_true",
                        help="also the SIC of the same classifier with the true SR background as template")
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    return parser.parse_args(argv)


def run_one(
    split: Any, window: Window, solver: str, batch_size: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Time one (solver, batch size) setting; returns one result row."""
    sr_data = split.data.in_range(window.low, window.high)
    n_template = int(round(args.oversampling * len(sr_data)))
    settings = dict(
        solver=solver, batch_size=batch_size, balance=args.balance, batch_order=args.batch_order,
        n_jobs=args.n_jobs, sinkhorn_reg=args.sinkhorn_reg, sinkhorn_max_iter=args.sinkhorn_max_iter,
        sinkhorn_pairs=args.sinkhorn_pairs,
    )
    best: dict[str, float] | None = None
    for _ in range(args.repeats):
        model = RadOT(device=args.device, seed=args.seed, settings=settings)
        synchronize(args.device)
        start = time.perf_counter()
        model.fit(split.data, window)
        synchronize(args.device)
        fitted = time.perf_counter()
        masses = sample_masses(
            "dijet", split.data.m, window, n_template, np.random.default_rng(args.seed), sideband_width=0.2
        )
        template = model.sample(masses.masses, window)
        synchronize(args.device)
        done = time.perf_counter()
        times = {"fit_s": fitted - start, "sample_s": done - fitted, "per_sr_s": done - start}
        if best is None or times["per_sr_s"] < best["per_sr_s"]:
            best = times
    assert best is not None
    row: dict[str, Any] = {"solver": solver, "batch_size": batch_size, **best, **model.info(),
                           "n_sr_data": len(sr_data), "n_template": len(template), "mass_sampler": masses.note}
    if args.fidelity or args.sic:
        from adbench.evaluate import ClassifierEnsemble, two_sample_auc
        from adbench.metrics import max_sic, sic_at_fpr

        test = split.test_in(window)
        if args.fidelity:
            row["fidelity_auc"] = two_sample_auc(template, test.background().x, args.seed)
        if args.sic:
            classifier = ClassifierEnsemble(seed=args.seed).fit(sr_data.x, template, model.template_sources())
            scores = classifier.predict(test.x)
            row["sic_1e3"] = sic_at_fpr(test.label, scores, 1e-3)
            row["max_sic"] = max_sic(test.label, scores)
    return row


def idealized_row(split: Any, window: Window, args: argparse.Namespace) -> dict[str, Any]:
    """The reference: held-out true SR background (up to oversampling x N_SR) as the template."""
    from adbench.evaluate import ClassifierEnsemble
    from adbench.metrics import max_sic, sic_at_fpr

    sr_data = split.data.in_range(window.low, window.high)
    background = split.truth_in(window).background.x
    background = background[: int(round(args.oversampling * len(sr_data)))]
    test = split.test_in(window)
    scores = ClassifierEnsemble(seed=args.seed).fit(sr_data.x, background).predict(test.x)
    return {"solver": "idealized", "n_template": len(background),
            "sic_1e3": sic_at_fpr(test.label, scores, 1e-3), "max_sic": max_sic(test.label, scores)}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    from adbench.data.synthetic import synthetic_dataset

    dataset = synthetic_dataset(args.n_background, args.n_signal, args.n_reference, seed=0)
    window = Window(3.3, 3.7)
    split = dataset.split(args.n_sig, args.seed, [window])
    device_name = platform.processor() or platform.machine()
    if args.device.startswith("cuda"):
        import torch

        device_name = torch.cuda.get_device_name(torch.device(args.device))
    print(f"# {len(split.data)} data events, N_sig = {args.n_sig}, {window}, device {args.device} ({device_name})")
    rows = []
    for solver in args.solvers.split(","):
        for batch_size in args.batch_sizes:
            row = run_one(split, window, solver, batch_size, args)
            rows.append(row)
            extra = "".join(
                f"  {key} {row[key]:.3f}" for key in ("fidelity_auc", "sic_at_1e-3", "max_sic") if key in row
            )
            print(
                f"{solver:9s} batch {batch_size:6d}  pairs {row['n_pairs']:7d} in {row['n_batches']:4d} batches  "
                f"fit {row['fit_s']:7.2f} s  sample {row['sample_s']:6.2f} s  per SR {row['per_sr_s']:7.2f} s"
                f"{extra}",
                flush=True,
            )
    if args.idealized:
        rows.append(idealized_row(split, window, args))
        print(f"idealized template: SIC at 1e-3 {rows[-1]['sic_at_1e-3']:.3f}  max SIC {rows[-1]['max_sic']:.3f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": args.device, "device_name": device_name, "rows": rows}, handle, indent=1)
    return rows


if __name__ == "__main__":
    main()
