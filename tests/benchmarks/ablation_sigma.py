"""Ablation of the flow-matching family: which choices make SIGMA's templates faithful on a budget.

Not a unit test. Each variant is a profile of the flow-matching presets with some settings changed;
every (variant, N_sig, seed) runs through the real harness (so the records carry fidelity AUCs with
their calibrated null, max SIC with bootstrap errors, and timings) into one results file, and a
summary table per variant is written next to it::

    .venv/bin/python tests/benchmarks/ablation_sigma.py --output reports/ablation-sigma-cpu \\
        --variants fast-v1,sigma-k9,sigma-k9-nll --n-sig 0,1000 --seeds 0

Rerunning the same command resumes (finished tasks are skipped). ``--list`` prints the variants.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

#: Variant name -> (base profile, overrides of the preset's tables, what it tests).
VARIANTS: dict[str, tuple[str, dict[str, Any], str]] = {
    "fast-v1": ("fast", {
        "network": {"architecture": "gated-bias", "mass_frequencies": 4},
        "train": {"schedule": "onecycle", "lr": 5.3e-3, "weight_decay": 1e-5, "keep_best": 3, "keep_spacing": 1},
        "selection": {"metric": "loss"}, "solver": {"method": "rk4", "steps": 6},
    }, "the first adbench fast profile: gated-bias network, k = 0..3, CFM-loss selection, RK4 x 6"),
    "gated-k9": ("fast", {
        "network": {"architecture": "gated-bias", "mass_frequencies": 9},
        "selection": {"metric": "loss"}, "solver": {"method": "rk4", "steps": 6},
    }, "adbench's first network with the published mass frequencies k = 0..8"),
    "sigma-k9": ("fast", {
        "network": {"architecture": "sigma", "mass_frequencies": 9},
        "selection": {"metric": "loss"}, "solver": {"method": "rk4", "steps": 6},
    }, "the published network and frequencies, CFM-loss selection"),
    "sigma-k9-nll": ("fast", {
        "network": {"architecture": "sigma", "mass_frequencies": 9},
        "selection": {"metric": "nll"}, "solver": {"method": "rk4", "steps": 6},
    }, "as sigma-k9, checkpoints selected by validation NLL"),
    "sigma-k9-nll-dopri5": ("fast", {
        "network": {"architecture": "sigma", "mass_frequencies": 9},
        "selection": {"metric": "nll"}, "solver": {"method": "dopri5", "atol": 1e-5, "rtol": 1e-5},
    }, "as sigma-k9-nll, adaptive Dormand-Prince sampling"),
    "sigma-k9-nll-ema": ("fast", {
        "network": {"architecture": "sigma", "mass_frequencies": 9},
        "train": {"ema_decay": 0.999},
        "selection": {"metric": "nll"}, "solver": {"method": "rk4", "steps": 6},
    }, "as sigma-k9-nll, with an exponential moving average of the weights (not in the paper)"),
    "sigma-k9-quantile": ("fast", {
        "network": {"architecture": "sigma", "mass_frequencies": 9}, "preprocessing": "quantile",
        "selection": {"metric": "loss"}, "solver": {"method": "rk4", "steps": 6},
    }, "as sigma-k9, features Gaussianised by their marginal quantiles instead of the logit (not in the paper)"),
    "sigma-k9-quantile-ema": ("fast", {
        "network": {"architecture": "sigma", "mass_frequencies": 9}, "preprocessing": "quantile",
        "train": {"ema_decay": 0.999},
        "selection": {"metric": "loss"}, "solver": {"method": "rk4", "steps": 6},
    }, "as sigma-k9-quantile, with an exponential moving average of the weights (not in the paper)"),
    "cpu-128x3": ("fast", {
        "network": {"architecture": "sigma", "mass_frequencies": 9, "width": 128, "blocks": 3},
        "preprocessing": "quantile",
        "train": {"epochs": 40, "batch_size": 1024, "lr": 2e-3, "keep_best": 5, "keep_spacing": 4},
        "selection": {"metric": "loss"}, "solver": {"method": "rk4", "steps": 6},
    }, "a cpu-profile candidate: 128 x 3 blocks, 40 epochs of batch 1024, quantile features"),
    "cpu-256x4": ("fast", {
        "network": {"architecture": "sigma", "mass_frequencies": 9, "width": 256, "blocks": 4},
        "preprocessing": "quantile",
        "train": {"epochs": 16, "batch_size": 1024, "lr": 2e-3, "keep_best": 5, "keep_spacing": 3},
        "selection": {"metric": "loss"}, "solver": {"method": "rk4", "steps": 4},
    }, "a cpu-profile candidate: the published 256 x 4 blocks, 16 epochs of batch 1024, quantile features"),
    "cpu-e80": ("cpu", {"train": {"epochs": 80, "keep_spacing": 8}},
                "80 epochs of the cpu profile's network (what the profile ships now)"),
    "cpu-e160": ("cpu", {"train": {"epochs": 160, "keep_spacing": 16}},
                 "twice the cpu profile's training (160 epochs, the kept epochs twice as far apart): how the "
                 "templates' fidelity scales with the budget beyond the 20-minute one"),
    "cpu-a0": ("cpu", {"anchor_offset": 0.0},
               "the cpu profile with SIGMA's anchors at the SR edges (3.3 / 3.7 TeV for 3.3-3.7) instead of a "
               "quarter of the SR width outside them (the published 3.2 / 3.8); sampling only, the fit is shared. "
               "The setting of sigma's `cpu-near` profile, which `adbench run` takes; kept here so that "
               "reports/ablation-anchors-cpu reruns by its command"),
    "cpu-k2": ("cpu", {"network": {"mass_frequencies": 2}},
               "the cpu profile with mass frequencies k = 0..1 only (for vcr: no fine mass periods to carry "
               "across the SR)"),
    "cpu-k4": ("cpu", {"network": {"mass_frequencies": 4}}, "the cpu profile with mass frequencies k = 0..3"),
    "fast-trend": ("fast", {"mass_trend": ["delta_R"]},
                   "the fast profile with delta_R's mass-dependent location and scale removed before the feature "
                   "transform (adbench.mass_trends.MassTrend; not in the paper)"),
    "cpu-trend": ("cpu", {"mass_trend": ["delta_R"]}, "the cpu profile with delta_R detrended in mass, as fast-trend"),
    "fast-qtrend": ("fast", {"mass_trend": ["delta_R"], "mass_trend_kind": "quantile"},
                    "the fast profile with delta_R mapped through its conditional quantiles given the mass to a "
                    "standard normal before the feature transform (adbench.mass_trends.MassQuantileTrend; not "
                    "in the paper)"),
    "cpu-qtrend": ("cpu", {"mass_trend": ["delta_R"], "mass_trend_kind": "quantile"},
                   "the cpu profile with delta_R's conditional quantiles, as fast-qtrend"),
    "fast-ema": ("fast", {"train": {"ema_decay": 0.999}},
                 "the fast profile with an exponential moving average of the weights (decay 0.999 per step; "
                 "not in the paper), the same training cost"),
    "fast-tlogit": ("fast", {"network": {"time_sampling": "logit-normal", "time_location": 0.0}},
                    "the fast profile with training times drawn logit-normal, sigmoid(N(0, 1)) (fewer at the "
                    "ends of the path; not in the paper), the same training cost"),
    "fast-tlate": ("fast", {"network": {"time_sampling": "logit-normal", "time_location": 1.0}},
                   "the fast profile with training times sigmoid(1 + N(0, 1)) (median 0.73: more of them near "
                   "the data, where the sharp features are resolved; not in the paper), the same training cost"),
    "fast-w64-e24": ("fast", {"network": {"width": 64}, "train": {"epochs": 24, "keep_spacing": 3}},
                     "the fast profile's network at 64 instead of 96 units, trained 24 instead of 16 epochs "
                     "(about the same CPU time: capacity traded for steps)"),
    "fast": ("fast", {}, "the fast profile as shipped"),
    "cpu": ("cpu", {}, "the cpu profile as shipped (the committed rows were measured at its first 40 epochs, "
                       "keep_spacing 4; it now ships cpu-e80's 80)"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=False, default=Path("runs/ablation-sigma"))
    parser.add_argument("--variants", default="fast-v1,sigma-k9,sigma-k9-nll")
    parser.add_argument("--methods", default="vdata,sigma-linear,sigma-context", help="flow-matching methods")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--n-sig", default="0,1000")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=None, help="override every variant's epochs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--list", action="store_true", help="print the variants and exit")
    parser.add_argument("--summary-only", action="store_true", help="rewrite the summary from stored results")
    return parser.parse_args(argv)


def specs(variant: str, methods: list[str], epochs: int | None):
    """One MethodSpec per method for a variant (its profile named after the variant)."""
    from adbench.harness import MethodSpec
    from adbench.methods.presets import Preset, load_preset, merge_tables

    profile, overrides, _ = VARIANTS[variant]
    if epochs is not None:
        overrides = merge_tables(overrides, {"train": {"epochs": epochs}})
    out = []
    for name in methods:
        base = load_preset(name, profile)
        params = merge_tables(base.params, overrides)
        # the variant descends from its base profile, so a cost guess without a measured profile of
        # its own takes the base's row
        lineage = base.lineage if variant == base.profile else (base.profile, *base.lineage)
        preset = Preset(name, variant, params, base.template, f"ablation {variant}", variant="", lineage=lineage)
        out.append(MethodSpec(name, preset))
    return out


def summary(directory: Path) -> str:
    """A markdown table per (variant, method, N_sig): fidelity AUC in null deviations, max SIC, times."""
    import numpy as np

    from adbench.evaluate import auc_null
    from adbench.report.feature_fidelity import feature_chi2_per_ndf
    from adbench.results import ResultStore, latest_records

    records = [r for r in latest_records(ResultStore(directory).load()) if r.ok]
    lines = ["| variant | method | N_sig | seeds | fidelity AUC (null sigmas) | delta_R chi2/ndf | max SIC +- stat | "
             "max SIC / idealized | shared fit | template |", "|---|---|---|---|---|---|---|---|---|---|"]
    ideal = {(r.n_sig, r.seed): r.max_sic for r in records if r.method == "idealized"}
    keys = sorted({(r.profile, r.method, r.n_sig) for r in records if r.method != "idealized"},
                  key=lambda k: (list(VARIANTS).index(k[0]) if k[0] in VARIANTS else 99, k[1], k[2]))
    for variant, method, n_sig in keys:
        rs = [r for r in records if (r.profile, r.method, r.n_sig) == (variant, method, n_sig)]
        sig = [auc_null(r.n_template, r.n_test_background).sigmas(r.fidelity_auc) for r in rs]
        fid = f"{np.mean([r.fidelity_auc for r in rs]):.4f} ({np.mean(sig):.1f})"
        sic = np.mean([r.max_sic for r in rs])
        err = math.sqrt(np.mean([r.stat_errors.get("max_sic", float("nan")) ** 2 for r in rs]))
        ratios = [r.max_sic / ideal[(r.n_sig, r.seed)] for r in rs if (r.n_sig, r.seed) in ideal and n_sig > 0]
        ratio = f"{np.mean(ratios):.2f}" if ratios else "-"
        chi2 = [feature_chi2_per_ndf(r.histograms).get("delta_R", math.nan) for r in rs]
        chi2_text = f"{np.nanmedian(chi2):.1f}" if any(math.isfinite(v) for v in chi2) else "-"
        shared = np.mean([r.time_fit_shared_s + r.time_fit_window_s for r in rs])
        sample = np.mean([r.time_sample_s for r in rs])
        lines.append(f"| {variant} | {method} | {n_sig} | {len(rs)} | {fid} | {chi2_text} | {sic:.2f} +- {err:.2f} | "
                     f"{ratio} | {shared:.0f} s | {sample:.1f} s |")
    for n_sig in sorted({r.n_sig for r in records if r.method == "idealized"}):
        rs = [r for r in records if r.method == "idealized" and r.n_sig == n_sig]
        sic = np.mean([r.max_sic for r in rs])
        lines.append(f"| idealized | idealized | {n_sig} | {len(rs)} | - | - | {sic:.2f} | 1 | - | - |")
    device = sorted({r.device for r in records})
    notes = "\n".join(f"- `{name}`: {VARIANTS[name][2]}" for name in VARIANTS)
    return (f"# Flow-matching ablation\n\nRecords: `{directory / 'results.jsonl'}`; hardware: {'; '.join(device)}.\n"
            f"Fidelity AUC: template versus true SR background at the given N_sig (0.5 = perfect), with its "
            f"distance from the calibrated null in null standard deviations. Max SIC +- its statistical error "
            f"(bootstrap of the test set), mean over seeds. delta_R chi2/ndf: the template's histogram against "
            f"the background's in delta_R (the report's \"template mismodelling per feature\"; about 1 for a "
            f"perfect template), median over seeds.\n\n" + "\n".join(lines) + f"\n\nVariants:\n{notes}\n")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.list:
        for name, (profile, overrides, what) in VARIANTS.items():
            print(f"{name:22s} from {profile}: {what}\n{'':22s} {json.dumps(overrides)}")
        return
    if not args.summary_only:
        import torch

        from adbench.data.cards import load_dataset
        from adbench.harness import MethodSpec, RunConfig, run_benchmark
        from adbench.windows import Window

        torch.set_num_threads(args.threads)
        dataset = load_dataset(args.dataset)
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        all_specs = [MethodSpec.parse("idealized", "fast")]
        for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
            if variant not in VARIANTS:
                sys.exit(f"unknown variant {variant!r}; --list shows them")
            all_specs += specs(variant, methods, args.epochs)
        config = RunConfig(
            methods=all_specs, windows=[Window()], n_sigs=[int(v) for v in args.n_sig.split(",")],
            seeds=[int(v) for v in args.seeds.split(",")], output=args.output, device="cpu",
            command="tests/benchmarks/ablation_sigma.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        )
        done = run_benchmark(dataset, config)
        print(f"{done.finished} finished, {done.failed} failed, {done.skipped} already done", file=sys.stderr)
    text = summary(args.output)
    (args.output / "ablation.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
