"""CATHODE's template from a saved background flow: does it reach the scaled features' tails?

Not a unit test. A spline flow (``FlowConfig.kind = "nsf"``) is the identity outside [-bound, bound] of
the scaled features, so its samples almost never land there (a Gaussian draw beyond 5 has probability
6e-7), while the SR data do (on ``synthetic`` about 0.24% of the SR background, most in the low tau21
tail). The classifier then sees those data events with no template beside them: background that looks
like signal. For a flow saved by ``background_kl.py`` or ``ranode_background.py --save-flows DIR`` this
runs CATHODE's window protocol on ``synthetic`` with it (template masses by ``cathode:PROFILE``'s sampler,
four template events per SR data event, the profile's classifier, the test set's metrics) and prints
one JSON line: per feature the share of SR data, template and test signal beyond +-5 scaled, the
test AUC, max SIC and fidelity AUC, and the share of the 0.1% highest-scored test background that lies
in those tails::

    .venv/bin/python tests/benchmarks/cathode_template_tails.py DIR/nsig1000-seed1 --seed 1
"""

from __future__ import annotations

import argparse
import json

import numpy as np

TAIL = 5.0  # zuko's default spline bound: where the default spline flow stops transforming


def tail_shares(scaled: np.ndarray, features: list[str]) -> dict[str, float]:
    """(n, d) scaled features -> the share of events beyond +-TAIL in each feature and in any."""
    beyond = np.abs(scaled) > TAIL
    return {**{name: round(float(beyond[:, j].mean()), 6) for j, name in enumerate(features)},
            "any": round(float(beyond.any(axis=1).mean()), 6)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flow", help="a folder written by ConditionalFlow.save")
    parser.add_argument("--seed", type=int, required=True, help="the split seed the flow was trained on")
    parser.add_argument("--n-sig", type=int, default=1000)
    parser.add_argument("--sr", default="3.3,3.7")
    parser.add_argument("--profile", default="cpu", help="cathode's profile for the mass sampler and classifier")
    parser.add_argument("--template-size", type=float, default=4.0)
    args = parser.parse_args(argv)
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
    split = load_dataset("synthetic").split(args.n_sig, args.seed, [window])
    sr_data, test = split.data.in_range(window.low, window.high), split.test_in(window)
    spec = MethodSpec.parse(f"cathode:{args.profile}", args.profile)
    flow = ConditionalFlow.load(args.flow)
    masses = template_masses(spec, split, window, int(round(args.template_size * len(sr_data))))
    template = flow.sample(masses.masses)
    scores = ClassifierEnsemble(spec.classifier, split.seed).fit(sr_data.x, template).predict(test.x)
    background = test.label == 0
    top = np.argsort(scores[background])[::-1][:max(1, int(0.001 * background.sum()))]
    scaled_background = flow.scaler_.transform(test.x[background])
    features = list(test.features)
    row = {
        "flow": args.flow, "seed": args.seed, "n_sig": args.n_sig, "profile": args.profile,
        "spline_bound": flow.spline_bound_, "kind": flow.config.kind,
        "beyond_5_sr_data": tail_shares(flow.scaler_.transform(sr_data.x), features),
        "beyond_5_template": tail_shares(flow.scaler_.transform(template), features),
        "beyond_5_test_signal": tail_shares(flow.scaler_.transform(test.x[~background]), features),
        "top_0.1%_background_beyond_5": round(float((np.abs(scaled_background[top]) > TAIL).any(axis=1).mean()), 4),
        "test_auc": round(roc_auc(test.label, scores), 4),
        "max_sic": round(sensitivity(test.label, scores)["max_sic"], 3),
        "fidelity_auc": round(two_sample_auc(template, test.x[background], split.seed), 4),
    }
    print(json.dumps(row), flush=True)
    return row


if __name__ == "__main__":
    main()
