"""CATHODE's template from a saved background flow: does it reach the scaled features' tails?

Not a unit test. A spline flow (``FlowConfig.kind = "nsf"``) is the identity outside [-bound, bound] of
the scaled features, so its samples almost never land there (a Gaussian draw beyond 5 has probability
6e-7), while the SR data do (on ``synthetic`` about 0.24% of the SR background, most in the low tau21
tail). The classifier then sees those data events with no template beside them: background that looks
like signal. For each flow saved by ``background_kl.py`` or ``ranode_background.py --save-flows DIR``
(a folder ``nsig<N>-seed<S>``, trained on that split) this runs CATHODE's window protocol on
``synthetic`` with it (template masses by ``cathode:PROFILE``'s sampler, four template events per SR
data event, the profile's classifier, the test set's metrics) and prints one JSON line: per feature the
share of SR data, template and test signal beyond +-5 scaled (the default bound, a fixed line whatever
the flow's own bound, so that flows are compared on the same events), the test AUC, max SIC and
fidelity AUC, and the share of the 0.1% highest-scored test background that lies in those tails::

    .venv/bin/python tests/benchmarks/cathode_template_tails.py DIR/nsig1000-seed1 DIR2/nsig1000-seed1 \\
        --output reports/cathode-template-tails-cpu.json
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from background_kl import write_rows

TAIL = 5.0  # zuko's default spline bound (where the default spline flow stops transforming), for every flow


def tail_shares(scaled: np.ndarray, features: list[str]) -> dict[str, float]:
    """(n, d) scaled features -> the share of events beyond +-TAIL in each feature and in any."""
    beyond = np.abs(scaled) > TAIL
    return {**{name: round(float(beyond[:, j].mean()), 6) for j, name in enumerate(features)},
            "any": round(float(beyond.any(axis=1).mean()), 6)}


def split_of(folder: Path) -> tuple[int, int]:
    """(N_sig, seed) from a saved flow's folder name ``nsig<N>-seed<S>``."""
    found = re.fullmatch(r"nsig(\d+)-seed(\d+)", folder.name)
    if found is None:
        raise SystemExit(f"{folder}: expected a folder named nsig<N>-seed<S>, as --save-flows writes")
    return int(found[1]), int(found[2])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flows", nargs="+", type=Path, help="folders written by ConditionalFlow.save")
    parser.add_argument("--sr", default="3.3,3.7")
    parser.add_argument("--profile", default="cpu", help="cathode's profile for the mass sampler and classifier")
    parser.add_argument("--template-size", type=float, default=4.0)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the rows")
    args = parser.parse_args(argv)
    splits = [split_of(folder) for folder in args.flows]  # refused before any work
    import torch

    from adbench.arguments import make_windows, parse_windows
    from adbench.data.cards import load_dataset
    from adbench.evaluate import ClassifierEnsemble, two_sample_auc
    from adbench.metrics import roc_auc, sensitivity
    from adbench.models.flows import ConditionalFlow
    from adbench.runconfig import MethodSpec
    from adbench.tasks import template_masses

    torch.set_num_threads(1)
    (window,) = make_windows(parse_windows(args.sr, None))
    dataset = load_dataset("synthetic")
    spec = MethodSpec.parse(f"cathode:{args.profile}", args.profile)
    rows = []
    for folder, (n_sig, seed) in zip(args.flows, splits, strict=True):
        started = time.perf_counter()
        split = dataset.split(n_sig, seed, [window])
        sr_data, test = split.data.in_range(window.low, window.high), split.test_in(window)
        flow = ConditionalFlow.load(folder)
        masses = template_masses(spec, split, window, int(round(args.template_size * len(sr_data))))
        template = flow.sample(masses.masses)
        scores = ClassifierEnsemble(spec.classifier, split.seed).fit(sr_data.x, template).predict(test.x)
        background = test.label == 0
        top = np.argsort(scores[background])[::-1][:max(1, int(0.001 * background.sum()))]
        top_beyond = (np.abs(flow.scaler_.transform(test.x[background][top])) > TAIL).any(axis=1)
        features = list(test.features)
        row = {
            "flow": str(folder), "seed": seed, "n_sig": n_sig, "profile": args.profile,
            "kind": flow.config.kind, "spline_bound": flow.spline_bound_ if flow.config.kind == "nsf" else None,
            "epochs": flow.record_.epochs_run,
            "beyond_5_sr_data": tail_shares(flow.scaler_.transform(sr_data.x), features),
            "beyond_5_template": tail_shares(flow.scaler_.transform(template), features),
            "beyond_5_test_signal": tail_shares(flow.scaler_.transform(test.x[~background]), features),
            "top_0.1%_background_beyond_5": round(float(top_beyond.mean()), 4),
            "test_auc": round(roc_auc(test.label, scores), 4),
            "max_sic": round(sensitivity(test.label, scores)["max_sic"], 3),
            "fidelity_auc": round(two_sample_auc(template, test.x[background], split.seed), 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    write_rows(args.output, "tests/benchmarks/cathode_template_tails.py", argv, window, rows)
    return rows


if __name__ == "__main__":
    main()
