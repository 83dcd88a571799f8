"""Benchmark: the measurements of issue 17's Goal for curtains4f4 and ranode (not collected by the tests).

Usage::

    .venv/bin/python tests/benchmarks/bench_curtains_ranode.py                      # LHCO size, fast profiles
    .venv/bin/python tests/benchmarks/bench_curtains_ranode.py --scale 0.3 --n-sig 1000,3000
    .venv/bin/python tests/benchmarks/bench_curtains_ranode.py --methods curtains4f4,cathode,ranode,radot --device cuda

Runs the methods through the harness (``run_benchmark``: same data, injection, classifier, metrics and
timing as ``adbench run``) on the synthetic dataset, SR 3.3-3.7 TeV, and prints one JSON line per task
plus a summary with the three Goal quantities, each as a measured number:

- per-SR time of curtains4f4 (its transport training and template, ``time_fit_window_s +
  time_sample_s``; its base flow is the shared fit, reported apart) against cathode's (fit + template)
  at the same profile, in the same run;
- R-ANODE's fitted w (the trained parameter, and the held-out maximum-likelihood w with its Fisher
  error) against the true SR signal fraction ``n_sig_sr / n_sr_data``;
- max SIC (with its bootstrap error) and SIC at FPR 1e-3 of every method.

``--scale`` shrinks the dataset (background, signal pool and held-out background) for a CPU; the
injected signal is scaled with it (``N_sig x scale`` events for a requested N_sig), so the SR signal
fraction is that of the LHCO-size dataset at N_sig. A smaller sample still means larger statistical
errors, which every number carries.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="curtains4f4,cathode,ranode", help="comma-separated method[:profile]")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--n-sig", default="3000", help="LHCO-equivalent injected signal, comma-separated")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size relative to LHCO (1M background)")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--output", default=None, help="results directory (default: a temporary one)")
    args = parser.parse_args(argv)

    import torch

    from adbench.data.synthetic import synthetic_dataset
    from adbench.harness import MethodSpec, RunConfig, run_benchmark
    from adbench.results import ResultStore
    from adbench.windows import Window

    torch.set_num_threads(args.threads)
    n_sigs = [int(v) for v in args.n_sig.split(",")]
    injected = {round(n * args.scale): n for n in n_sigs}
    started = time.perf_counter()
    dataset = synthetic_dataset(round(1_000_000 * args.scale), round(100_000 * args.scale),
                                round(3_000_000 * args.scale), seed=args.data_seed)
    data_s = time.perf_counter() - started
    output = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="bench_curtains_ranode_"))
    config = RunConfig(
        methods=[MethodSpec.parse(name, args.profile) for name in args.methods.split(",")],
        windows=[Window(3.3, 3.7)], n_sigs=sorted(injected), seeds=[int(s) for s in args.seeds.split(",")],
        output=output, device=args.device, bootstrap=args.bootstrap,
        command="tests/benchmarks/bench_curtains_ranode.py " + " ".join(argv or []),
    )
    run_benchmark(dataset, config)
    rows = []
    for record in ResultStore(output).load():
        row = {
            "method": record.method, "profile": record.profile, "n_sig": injected.get(record.n_sig, record.n_sig),
            "n_sig_injected": record.n_sig, "seed": record.seed, "status": record.status,
        }
        if record.ok:
            row.update({
                "max_sic": round(record.max_sic, 3),
                "max_sic_err": round(record.stat_errors.get("max_sic", float("nan")), 3),
                "sic_1e3": round(record.sic_1e3, 3), "auc": round(record.auc, 4),
                "n_sr_data": record.n_sr_data, "sr_signal_fraction": round(record.n_sig_sr / record.n_sr_data, 5),
                "time_fit_shared_s": round(record.time_fit_shared_s, 1),
                "per_sr_s": round(record.time_fit_window_s + record.time_sample_s, 1),
                "time_classify_s": round(record.time_classify_s, 1),
            })
            if math.isfinite(record.fidelity_auc):
                row["fidelity_auc"] = round(record.fidelity_auc, 4)
            info = record.method_info
            if "fitted_w" in info:
                row.update({"fitted_w": round(info["fitted_w"], 5), "heldout_w": round(info["heldout_w"], 5),
                            "heldout_w_error": round(info["heldout_w_error"], 5),
                            "fitted_w_over_true": round(info["fitted_w"] / max(row["sr_signal_fraction"], 1e-12), 2),
                            "heldout_w_over_true": round(info["heldout_w"] / max(row["sr_signal_fraction"], 1e-12), 2)})
        else:
            row["error"] = record.error
        rows.append(row)
        print(json.dumps(row))
    summary = {
        "dataset": f"synthetic x {args.scale} ({len(dataset.events)} events), data seed {args.data_seed}",
        "profile": args.profile, "device": args.device, "threads": args.threads,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
        "data_s": round(data_s, 1), "total_s": round(time.perf_counter() - started, 1), "output": str(output),
    }
    for n_sig in n_sigs:
        by_method = {r["method"]: r for r in rows if r["n_sig"] == n_sig and r["status"] == "ok"}
        if "curtains4f4" in by_method and "cathode" in by_method:
            summary[f"per_sr_ratio_curtains_over_cathode_nsig{n_sig}"] = round(
                by_method["curtains4f4"]["per_sr_s"] / by_method["cathode"]["per_sr_s"], 3)
    print(json.dumps({"summary": summary}))
    return {"rows": rows, "summary": summary}


if __name__ == "__main__":
    main()
