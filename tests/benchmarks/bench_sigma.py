"""Benchmark of the flow-matching family: the shared CFM fit and the per-SR templates.

Not a unit test (the file name does not start with ``test_``). Run it as a script::

    .venv/bin/python tests/benchmarks/bench_sigma.py                       # CPU, fast profile, 1.1M events
    .venv/bin/python tests/benchmarks/bench_sigma.py --device cuda --profile paper --vcr

or through pytest-benchmark with ``make bench`` (the ``test_*`` functions below; settings from the
environment: ``ADBENCH_BENCH_DEVICE`` (cpu), ``ADBENCH_BENCH_PROFILE`` (fast),
``ADBENCH_BENCH_BACKGROUND`` (1000000 background events)).

It builds the synthetic dataset (1M background + 100k signal pool by default), injects ``--n-sig``
signal events, trains the shared all-data CFM once (the fit of vdata, sigma-linear and
sigma-context), then times one template of ``4 x N_SR`` (the harness default) events per method in the SR,
and with ``--vcr`` one v_CR fit + template. Device work is synchronised around every timed phase.
Prints one JSON object (and writes it to ``--output`` if given).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", default="fast", choices=("fast", "cpu", "paper"))
    parser.add_argument("--n-background", type=int, default=1_000_000)
    parser.add_argument("--n-signal", type=int, default=100_000, help="signal pool")
    parser.add_argument("--n-sig", type=int, default=1000, help="injected signal events")
    parser.add_argument("--sr", default="3.3,3.7")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--vcr", action="store_true", help="also time one v_CR fit and template")
    parser.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    parser.add_argument("--output", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(argv)
    import torch

    from adbench.arguments import make_windows, parse_windows
    from adbench.data.synthetic import synthetic_dataset
    from adbench.harness import DEFAULT_TEMPLATE_SIZE
    from adbench.masses import sample_masses
    from adbench.methods.presets import load_preset, merge_tables
    from adbench.methods.registry import get_method_class
    from adbench.timing import Stopwatch

    torch.set_num_threads(args.threads)
    (window,) = make_windows(parse_windows(args.sr, None))
    started = time.perf_counter()
    dataset = synthetic_dataset(args.n_background, args.n_signal, n_reference=10_000, seed=0)
    split = dataset.split(args.n_sig, seed=0, windows=[window])
    sr_data = split.data.in_range(window.low, window.high)
    if args.device.startswith("cuda"):
        device_name = torch.cuda.get_device_name(args.device)
    else:
        device_name = platform.processor() or "cpu"
    result: dict[str, Any] = {
        "device": args.device, "device_name": device_name, "threads": args.threads, "profile": args.profile,
        "n_data": len(split.data), "n_sr": len(sr_data), "window": window.name,
        "data_seconds": time.perf_counter() - started, "torch": torch.__version__, "methods": {},
    }

    def model(name: str):
        preset = load_preset(name, args.profile)
        params = preset.params
        if args.epochs is not None:
            params = merge_tables(params, {"train": {"epochs": args.epochs}})
        return get_method_class(name)(device=args.device, seed=0, settings=params), preset

    def template(name: str, fitted) -> dict[str, Any]:
        preset = load_preset(name, args.profile)
        n = int(round(DEFAULT_TEMPLATE_SIZE * len(sr_data)))
        watch = Stopwatch(args.device)
        with watch.phase("sample"):
            masses = sample_masses(preset.template.mass_sampler, split.data.m, window, n, np.random.default_rng(0))
            events = fitted.sample(masses.masses, window)
        info = fitted.info()
        return {
            "template_events": len(events), "sample_seconds": watch.seconds["sample"],
            "ode_solver": info["ode_solver"], "nfe_mean": info["nfe_mean"], "ode_solves": info["ode_solves"],
        }

    shared, _ = model("sigma-context")
    watch = Stopwatch(args.device)
    with watch.phase("fit"):
        shared.fit(split.data, None)
    summary = shared.info()
    result["shared_fit"] = {
        "seconds": watch.seconds["fit"], "epochs_run": summary["epochs_run"],
        "best_val_loss": summary["best_val_loss"], "n_train": summary["n_train"],
    }
    print(f"shared fit: {watch.seconds['fit']:.1f} s ({summary['epochs_run']} epochs)", file=sys.stderr)
    for name in ("vdata", "sigma-linear", "sigma-context"):
        method, _ = model(name)
        method.share_fit_from(shared)
        result["methods"][name] = template(name, method)
        print(f"{name}: template {result['methods'][name]['sample_seconds']:.2f} s", file=sys.stderr)
    if args.vcr:
        vcr, _ = model("vcr")
        watch = Stopwatch(args.device)
        with watch.phase("fit"):
            vcr.fit(split.data, window)
        result["methods"]["vcr"] = {"fit_seconds": watch.seconds["fit"], **template("vcr", vcr)}
        print(f"vcr: fit {watch.seconds['fit']:.1f} s", file=sys.stderr)
    text = json.dumps(result, indent=1)
    print(text)
    if args.output:
        args.output.write_text(text)
    return result


if __name__ == "__main__":
    main()


# ----------------------------------------------------------------------------- pytest-benchmark

_CACHE: dict[str, Any] = {}


def _bench_setup() -> dict[str, Any]:
    """The dataset, split, SR masses and the shared model (fitted on first use), cached per run."""
    if not _CACHE:
        import torch

        from adbench.data.synthetic import synthetic_dataset
        from adbench.harness import DEFAULT_TEMPLATE_SIZE
        from adbench.masses import sample_masses
        from adbench.methods.presets import load_preset
        from adbench.windows import Window

        torch.set_num_threads(int(os.environ.get("ADBENCH_BENCH_THREADS", "1")))
        n_background = int(os.environ.get("ADBENCH_BENCH_BACKGROUND", "1000000"))
        window = Window()
        dataset = synthetic_dataset(n_background, 100_000, n_reference=10_000, seed=0)
        split = dataset.split(1000, seed=0, windows=[window])
        preset = load_preset("sigma-context", os.environ.get("ADBENCH_BENCH_PROFILE", "fast"))
        n = int(round(DEFAULT_TEMPLATE_SIZE * int(window.in_sr(split.data.m).sum())))
        masses = sample_masses(preset.template.mass_sampler, split.data.m, window, n, np.random.default_rng(0))
        _CACHE.update(split=split, window=window, masses=masses.masses, preset=preset, model=None)
    return _CACHE


def _new(name: str):
    from adbench.methods.presets import load_preset
    from adbench.methods.registry import get_method_class

    preset = load_preset(name, _CACHE["preset"].profile)
    return get_method_class(name)(device=os.environ.get("ADBENCH_BENCH_DEVICE", "cpu"), seed=0, settings=preset.params)


def _synchronised(function):
    from adbench.timing import synchronize

    def run():
        result = function()
        synchronize(os.environ.get("ADBENCH_BENCH_DEVICE", "cpu"))
        return result

    return run


def _shared_model():
    cache = _bench_setup()
    if cache["model"] is None:
        cache["model"] = _new("sigma-context").fit(cache["split"].data, None)
    return cache["model"]


def test_shared_cfm_fit(benchmark):
    """The once-per-dataset fit shared by vdata, sigma-linear and sigma-context."""
    cache = _bench_setup()
    model = _new("sigma-context")
    benchmark.pedantic(_synchronised(lambda: model.fit(cache["split"].data, None)), rounds=1, iterations=1)
    cache["model"] = model
    benchmark.extra_info.update({k: model.info()[k] for k in ("epochs_run", "best_val_loss", "n_train")})


def _bench_template(benchmark, name: str) -> None:
    cache = _bench_setup()
    method = _new(name).share_fit_from(_shared_model())
    template = benchmark.pedantic(
        _synchronised(lambda: method.sample(cache["masses"], cache["window"])), rounds=1, iterations=1
    )
    info = method.info()
    benchmark.extra_info.update(template_events=len(template), ode_solver=info["ode_solver"], nfe=info["nfe_mean"])


def test_template_vdata(benchmark):
    _bench_template(benchmark, "vdata")


def test_template_sigma_linear(benchmark):
    _bench_template(benchmark, "sigma-linear")


def test_template_sigma_context(benchmark):
    _bench_template(benchmark, "sigma-context")
