"""How much signal a template carries: the share of template events a truth classifier calls signal-like.

Not a unit test. A template that carries the injected signal (a model that learned it, or sideband
signal moved into the SR) hides that signal from the data-versus-template classifier. Per method, the
template of one SR at one N_sig and seed is drawn as the harness draws it, and a classifier trained on
held-out truth (SR signal against SR background) scores it: the share above the cut that passes 1% of
the test background is 1% for a pure background template, higher when it carries signal (or
signal-like mismodelling); the SR data's share (which holds the signal) is printed beside it. The
error counts a template's distinct source events only (RAD-OT and CURTAINs4F4 reuse them)::

    .venv/bin/python tests/benchmarks/template_signal.py --methods curtains4f4,cathode,sigma-context \\
        --n-sig 3000 --output reports/template-signal-cpu.json

Methods that share a training in the harness (the flow-matching family at one profile, e.g.
``sigma-context:cpu,sigma-context:cpu-near,vdata:cpu``) share it here too; ``--cache`` keeps that
shared fit between runs (the same file as ``ablation_solver.py --cache``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from _fit_cache import CACHE_HELP, cache_key, cached_fit


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="curtains4f4,cathode,sigma-context,idealized",
                        help="template methods, each NAME or NAME:PROFILE")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--n-sig", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--template-size", type=float, default=4.0)
    parser.add_argument("--cache", type=Path, default=None, help=CACHE_HELP)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the rows")
    return parser.parse_args(argv)


def binomial(passing, independent: int | None = None) -> tuple[float, float]:
    """The passing share and its binomial error over ``independent`` events (default: all; a template
    that reuses source events has only as many independent events as distinct sources)."""
    share = float(passing.mean())
    return share, math.sqrt(share * (1 - share) / (independent or len(passing)))


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    import numpy as np
    import torch

    from adbench.data.cards import load_dataset
    from adbench.environment import device_name, git_revision
    from adbench.evaluate import ClassifierConfig, ClassifierEnsemble
    from adbench.runconfig import MethodSpec
    from adbench.tasks import template_masses
    from adbench.windows import Window

    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    window = Window()
    split = dataset.split(args.n_sig, args.seed, [window])
    truth, test = split.truth_in(window), split.test_in(window)
    sr_data = split.data.in_range(window.low, window.high)
    signal_like = ClassifierEnsemble(ClassifierConfig(n_models=1), seed=args.seed).fit(truth.signal.x,
                                                                                      truth.background.x)
    cut = float(np.quantile(signal_like.predict(test.background().x), 0.99))
    data_share, data_error = binomial(signal_like.predict(sr_data.x) > cut)
    print(json.dumps({"sample": "SR data", "signal_like_share": round(data_share, 5), "error": round(data_error, 5),
                      "sr_signal_fraction": round(sr_data.n_signal / len(sr_data), 5)}), flush=True)
    rows = []
    shared_fits: dict[str, object] = {}  # fit_signature -> the fitted model, shared as the harness shares it
    for text in args.methods.split(","):
        spec = MethodSpec.parse(text, args.profile)
        if spec.cls.produces != "template":
            raise SystemExit(f"{spec.name} returns scores, not a template")
        model = spec.cls(device="cpu", seed=args.seed, settings=spec.preset.params)
        signature = None if spec.cls.per_window else model.fit_signature()
        started = time.perf_counter()
        fit = "fitted"
        if signature is None:
            model.fit(split.data, window if spec.cls.per_window else None,
                      split.truth_in(window) if spec.cls.needs_truth else None)
        elif signature in shared_fits:
            model.share_fit_from(shared_fits[signature])
            fit = "shared"
        else:
            owner, fit_seconds = cached_fit(args.cache, cache_key(dataset, args.n_sig, args.seed, signature),
                                            lambda model=model: model.fit(split.data, None))
            shared_fits[signature] = owner
            if owner is not model:
                model.share_fit_from(owner)
            fit = "cache" if fit_seconds is None else "fitted"
        masses = template_masses(spec, split, window, int(round(args.template_size * len(sr_data))))
        template = np.asarray(model.sample(masses.masses, window))
        seconds = time.perf_counter() - started
        sources = model.template_sources()
        distinct = len(template) if sources is None else len(np.unique(sources))
        share, error = binomial(signal_like.predict(template) > cut, distinct)
        row = {"method": spec.name, "profile": spec.preset.profile, "signal_like_share": round(share, 5),
               "error": round(error, 5), "above_background_sigmas": round((share - 0.01) / error, 1),
               "variant": spec.preset.variant, "template_events": len(template), "distinct_sources": distinct,
               "fit": fit, "seconds": round(seconds, 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.output is not None:
        args.output.write_text(json.dumps({
            "dataset": dataset.name, "n_sig": args.n_sig, "seed": args.seed, "window": str(window),
            "sr_data_share": round(data_share, 5), "sr_data_error": round(data_error, 5),
            "sr_signal_fraction": sr_data.n_signal / len(sr_data), "threads": args.threads,
            "device": device_name("cpu"), "git_revision": git_revision(), "rows": rows,
        }, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
