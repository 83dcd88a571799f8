"""Benchmark: CATHODE's training and sampling time per signal region (not collected by the tests).

Usage::

    .venv/bin/python tests/benchmarks/bench_cathode.py                       # fast profile, CPU
    .venv/bin/python tests/benchmarks/bench_cathode.py --profile paper --epochs 1 --sample 50000
    .venv/bin/python tests/benchmarks/bench_cathode.py --profile paper-gpu --device cuda
    .venv/bin/python tests/benchmarks/bench_cathode.py --profile paper --backend nflows --epochs 1

On the synthetic dataset (1M background + 100k signal pool by default, N_sig = 1000, SR 3.3-3.7 TeV):
fits CATHODE on the sidebands, samples a template of 4 x N_SR events at KDE masses,
and prints one JSON line with the timings, the validation losses and the template fidelity AUC.
``--epochs`` overrides the profile (per-epoch timing of long profiles); ``--sample`` caps the number
of template events timed (the time per event is reported too, for extrapolation).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="fast", help="fast | paper | paper-gpu (a table of methods/cathode.toml)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--n-background", type=int, default=1_000_000)
    parser.add_argument("--n-signal", type=int, default=100_000)
    parser.add_argument("--n-sig", type=int, default=1000, help="injected signal events")
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    parser.add_argument("--backend", default=None, help="override the profile's flow backend (zuko | nflows)")
    parser.add_argument("--sample", type=int, default=None, help="cap on the template events timed")
    parser.add_argument("--features", default="sigma", help="feature set: sigma (5) or cathode (4)")
    parser.add_argument("--no-fidelity", action="store_true")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from adbench.data.features import FEATURE_SETS
    from adbench.data.synthetic import synthetic_dataset
    from adbench.evaluate import two_sample_auc
    from adbench.masses import sample_masses
    from adbench.methods.cathode import Cathode
    from adbench.methods.presets import load_preset, merge_tables
    from adbench.timing import Stopwatch
    from adbench.windows import Window

    torch.set_num_threads(args.threads)
    params = load_preset("cathode", args.profile).params
    if args.epochs is not None:
        params = merge_tables(params, {"train": {"epochs": args.epochs}})
    if args.backend is not None:
        params = merge_tables(params, {"flow": {"backend": args.backend}})
    window = Window(3.3, 3.7)
    watch = Stopwatch(args.device)
    with watch.phase("data"):
        dataset = synthetic_dataset(args.n_background, args.n_signal, 200_000, seed=0)
        split = dataset.with_features(FEATURE_SETS[args.features]).split(args.n_sig, seed=0, windows=[window])
    sr = split.data.in_range(window.low, window.high)
    n_template = int(round(4 * len(sr)))
    masses = sample_masses("kde", split.data.m, window, n_template, np.random.default_rng(0)).masses
    timed = masses if args.sample is None else masses[: args.sample]

    model = Cathode(device=args.device, seed=0, settings=params)
    with watch.phase("fit"):
        model.fit(split.data, window)
    with watch.phase("sample"):
        template = model.sample(timed, window)
    info = model.info()
    per_event = watch.seconds["sample"] / len(timed)
    result = {
        "profile": args.profile,
        "params": params,
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(torch.device(args.device)),
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "n_data": len(split.data),
        "n_sideband": info["sideband_events"],
        "n_train": info["n_train"],
        "n_sr": len(sr),
        "epochs": info["epochs_run"],
        "fit_s": round(watch.seconds["fit"], 2),
        "fit_per_epoch_s": round(watch.seconds["fit"] / info["epochs_run"], 2),
        "sample_events": len(timed),
        "sample_s": round(watch.seconds["sample"], 2),
        "sample_us_per_event": round(1e6 * per_event, 2),
        "sample_full_template_s": round(per_event * n_template, 2),
        "kept_val_losses": [round(v, 5) for v in info["kept_val_losses"]],
        "kept_epochs": info["kept_epochs"],
        "per_sr_s": round(watch.seconds["fit"] + per_event * n_template, 2),
    }
    if not args.no_fidelity:
        background = split.test_in(window).background().x
        start = time.perf_counter()
        result["fidelity_auc"] = round(two_sample_auc(template, background, seed=0), 4)
        result["fidelity_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
