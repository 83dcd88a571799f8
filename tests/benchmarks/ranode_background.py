"""R-ANODE's fitted signal fraction with a learnt and with the exact background density.

Not a unit test. R-ANODE fits w and a signal density on top of a fixed p_bkg(m, x); whatever p_bkg
misses, the signal density can take, and w with it. On ``synthetic`` the generator's own density is
known (``SmoothMixture.log_prob``, ``SyntheticModel.background_mass_log_prob``), so the two sources of
a biased w can be told apart, per (N_sig, seed), with the signal model and its training unchanged:

- ``flow``: the method as it runs (the family's background flow on the sidebands, the dijet fit);
- ``generator-x``: the exact p_bkg(x | m), the dijet fit for p_bkg(m);
- ``flow-sr``: the family's background flow trained on true background inside the SR (held-out
  events the idealized template draws from, as many as the sidebands hold, never the test set) with
  the exact p_bkg(m): a flow that needs no interpolation from the sidebands, so that ``flow`` against
  ``flow-sr`` is the interpolation's error and ``flow-sr`` against ``generator`` the flow's own;
- ``generator``: the exact p_bkg(x | m) and p_bkg(m)::

    .venv/bin/python tests/benchmarks/ranode_background.py --n-sig 0,1000,3000 --seeds 0,1,2 \\
        --output reports/ranode-background-cpu.json

``--background-epochs`` trains the ``flow`` background longer than the profile does, and
``--background-kind nsf`` makes it a spline flow (``FlowConfig.kind``) instead of the affine MAF;
``--background-transforms``, ``--background-hidden`` and ``--background-bins`` change its size (``flow`` and
``flow-sr``).
``--signal-splits K`` ensembles K signal fits on different train/validation splits (``signal_splits``,
the authors' 20); split 0 is the single fit, so each row also gives every split's own w.
``--signal-split-selection likelihood`` ensembles only the splits whose held-out likelihood ratio is
near the best split's (``signal_split_selection``). ``--flow-sr-events N`` trains the ``flow-sr``
background on N SR background events drawn from the generator instead of the held-out ones: whether
its error shrinks with more training events. ``--flow-seed-offset K`` starts the ``flow`` (or ``flow-sr``)
background's training from another random seed (the method's seed + K) with the data, the signal fits
and their seeds unchanged: whether a biased w comes from one training of the background or from the
sidebands it learns.
``--background-mass-context log-mass`` gives the background flow ln m as its context instead of m
(``FlowConfig.mass_context``); ``--background-spline-bound B`` widens a spline flow's range
(``FlowConfig.spline_bound``). Rows with a learnt background and no mass trend also give
``background_kl``: KL(q || p_bkg) in nats per event from the generator's density, on the test set's SR
background, its mean ln q - ln p_bkg per decile of each feature, and ``log_ratio_at_signal``, the
mean over its signal: measures of the background's error with no signal fit's noise in them
(``background_kl.py``).
``--background-sideband-width W`` trains the ``flow`` background on the events within W TeV of the SR
only (``sideband_width``) instead of everything outside it: whether interpolating from the nearest
masses costs less than the fewer events.

Prints one JSON line per fit: the true SR signal fraction, the fitted w (trained parameter) and the
held-out maximum-likelihood w with its Fisher error and log-likelihood ratio, max SIC and the test AUC
of the score; with several signal splits also each split's w, held-out w and ratio and the test AUC
of its own score.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from background_kl import (
    FLOW_OPTIONS,
    add_flow_arguments,
    background_error,
    flow_settings,
    generated_sr_background,
    write_rows,
)

BACKGROUNDS = ("flow", "generator-x", "flow-sr", "generator")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from adbench.methods.ranode import SPLIT_SELECTIONS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sr", default="3.3,3.7")
    parser.add_argument("--n-sig", default="0,1000,3000")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--backgrounds", default=",".join(BACKGROUNDS))
    add_flow_arguments(parser, "background-")
    parser.add_argument("--signal-splits", type=int, default=None,
                        help="ensemble this many signal fits on different train/validation splits")
    parser.add_argument("--signal-split-selection", choices=SPLIT_SELECTIONS, default=None,
                        help="how the signal splits are combined (RanodeSettings.signal_split_selection)")
    parser.add_argument("--w-warmup-epochs", type=int, default=None,
                        help="signal epochs with w held at w_init before it is fitted (RanodeSettings.w_warmup_epochs)")
    parser.add_argument("--flow-sr-events", type=int, default=None,
                        help="flow-sr: train on this many SR background events drawn from the generator instead "
                             "of the held-out ones (whether the SR flow's error shrinks with its training events)")
    parser.add_argument("--flow-seed-offset", type=int, default=0,
                        help="train the flow background from the method's seed plus this")
    parser.add_argument("--save-flows", type=Path, default=None,
                        help="save the sideband background flow (ConditionalFlow.save) into a folder of this one, "
                             "named by N_sig and seed, replacing one there (background_tails.py reads it)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the rows")
    return parser.parse_args(argv)


class GeneratorDensity:
    """The synthetic generator's p_bkg(x | m) in the shape of a trained background flow."""

    def __init__(self, background, scaler) -> None:
        self.background, self.scaler = background, scaler

    def log_prob(self, x: np.ndarray, m: np.ndarray, physical: bool = True) -> np.ndarray:
        """(n, d), (n,) -> (n,) log-density per unit of x, or of the scaled features."""
        from adbench.models.flows import scaler_log_jacobian

        log_p = self.background.log_prob(m, x)
        return log_p if physical else log_p - scaler_log_jacobian(self.scaler, x)

    def info(self) -> dict:
        return {"kind": "generator"}


def ranode_with(background: str, flow_seed_offset: int = 0, truth=None, flow_sr_events: int | None = None):
    """The Ranode class whose fixed background is ``background`` (one of BACKGROUNDS), its ``flow``
    (and ``flow-sr``) trained from the method's seed + ``flow_seed_offset``; ``truth``: the split's ``Truth`` in the SR
    (for ``flow-sr``, which trains on ``flow_sr_events`` generated SR events instead where given)."""
    from adbench.data.synthetic import load_calibration
    from adbench.methods.ranode import Ranode, background_mass_log_density

    class OffsetRanode(Ranode):
        def _new_flow(self, seed, train=None):  # Ranode's only flow is the background
            return super()._new_flow(seed + flow_seed_offset, train)

    if background == "flow":
        return OffsetRanode if flow_seed_offset else Ranode
    if flow_seed_offset and background != "flow-sr":
        raise SystemExit(f"--flow-seed-offset applies to the flow and flow-sr backgrounds, not to {background!r}")
    if background not in BACKGROUNDS:
        raise SystemExit(f"unknown background {background!r}; choose from {', '.join(BACKGROUNDS)}")
    model = load_calibration()

    class GeneratorRanode(OffsetRanode):
        def _fit_background(self, events, sidebands, window) -> None:
            if background == "flow-sr" and flow_sr_events is not None:
                true_sr = generated_sr_background(model, window, flow_sr_events, events.features, self.seed)
                super()._fit_background(events, true_sr, window)
                self.flow_sr_events_ = len(true_sr)
            elif background == "flow-sr":
                n = min(len(truth.background), len(sidebands))
                true_sr = truth.background.select(np.sort(np.random.default_rng(self.seed).permutation(
                    len(truth.background))[:n]))
                super()._fit_background(events, true_sr, window)
                self.flow_sr_events_ = len(true_sr)
            elif self.trend_ is not None:  # the generator's density is in the raw features
                raise SystemExit(f"--backgrounds {background}: the profile's mass trend would feed it transformed "
                                 "features; choose a profile without one")
            else:
                self.background_flow_ = GeneratorDensity(model.background, self.scaler_)
            if background == "generator-x":
                self.log_mass_bkg_, self.mass_fit_ = background_mass_log_density(
                    events.m, window, self.config.mass_sideband_width)
            else:
                self.mass_fit_ = model.background_mjj
                self.log_mass_bkg_ = lambda m: model.background_mass_log_prob(m, window.low, window.high)

    return GeneratorRanode


def split_test_aucs(method, test, window) -> list[float]:
    """The test AUC of each signal split's own score (its p_sig alone, with p_sig(m) from its own draws):
    which of the splits found the signal."""
    import copy

    from adbench.metrics import roc_auc

    aucs = []
    for split in range(len(method.splits_)):
        alone = copy.copy(method)
        alone.chosen_splits_ = [split]
        alone._fit_mass_histogram(window)
        aucs.append(round(roc_auc(test.label, alone.score(test, window)), 4))
    return aucs


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    import torch

    from adbench.arguments import make_windows, parse_windows
    from adbench.data.cards import load_dataset
    from adbench.errors import ConfigError
    from adbench.methods.presets import load_preset
    from adbench.methods.ranode import Ranode
    from adbench.metrics import roc_auc, sensitivity
    from adbench.settings import build_settings

    torch.set_num_threads(args.threads)
    for background in args.backgrounds.split(","):  # refused before any training, not after the first
        ranode_with(background, args.flow_seed_offset)
    if args.background_sideband_width is not None and args.backgrounds != "flow":
        raise SystemExit("--background-sideband-width narrows the sideband flow's events: it needs --backgrounds flow")
    if args.flow_sr_events is not None and (args.flow_sr_events < 1000 or "flow-sr" not in args.backgrounds.split(",")):
        raise SystemExit("--flow-sr-events needs --backgrounds flow-sr and at least 1000 events")
    (window,) = make_windows(parse_windows(args.sr, None))
    dataset = load_dataset("synthetic")
    settings = flow_settings(load_preset("ranode", args.profile).params, args)
    if args.signal_splits is not None:
        settings = {**settings, "signal_splits": args.signal_splits}
    if args.signal_split_selection is not None:
        settings = {**settings, "signal_split_selection": args.signal_split_selection}
    if args.w_warmup_epochs is not None:
        settings = {**settings, "w_warmup_epochs": args.w_warmup_epochs}
    try:  # the settings are refused before the data are split, not when the first method is built
        ranode_settings = build_settings(Ranode.Settings, settings, f"ranode:{args.profile} settings")
    except ConfigError as error:
        raise SystemExit(f"ranode:{args.profile} with these options: {error}") from None
    if args.save_flows is not None and (ranode_settings.mass_trend or ranode_settings.background_flows > 1
                                        or "flow" not in args.backgrounds.split(",")):
        # a saved flow is read as a density of the raw features (background_tails.py, cathode_template_tails.py)
        raise SystemExit(f"--save-flows saves one sideband flow of the raw features: ranode:{args.profile} has "
                         f"mass_trend {list(ranode_settings.mass_trend)}, {ranode_settings.background_flows} "
                         f"background flows and --backgrounds {args.backgrounds}")
    rows = []
    for n_sig in (int(v) for v in args.n_sig.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            split = dataset.split(n_sig, seed, [window])
            sr = split.data.select(window.in_sr(split.data.m))
            test = split.test_in(window)
            for background in args.backgrounds.split(","):
                started = time.perf_counter()
                ranode = ranode_with(background, args.flow_seed_offset, split.truth_in(window), args.flow_sr_events)
                method = ranode(seed=seed, settings=settings).fit(split.data, window)
                score = method.score(test, window)
                info = method.info()
                row = {"n_sig": n_sig, "seed": seed, "background": background, "profile": args.profile,
                       "background_epochs": settings["train"]["epochs"],
                       "flow_seed_offset": args.flow_seed_offset,
                       "background_kind": (settings["flow"].get("kind", "maf") if background.startswith("flow")
                                           else "exact"),
                       **({key: settings["flow"][key]
                           for key in FLOW_OPTIONS if key != "kind" and key in settings["flow"]}
                          if background.startswith("flow") else {}),
                       **({"sideband_width": settings["sideband_width"], "sideband_events": info["sideband_events"]}
                          if "sideband_width" in settings else {}),
                       **({"flow_sr_events": method.flow_sr_events_,
                           "flow_sr_source": "generated" if args.flow_sr_events is not None else "held-out"}
                          if background == "flow-sr" else {}),
                       "true_w": round(float(sr.label.mean()), 6), "fitted_w": round(info["fitted_w"], 6),
                       "heldout_w": round(info["heldout_w"], 6), "heldout_w_error": round(info["heldout_w_error"], 6),
                       "signal_splits": info["signal_splits"],
                       **({"w_warmup_epochs": info["w_warmup_epochs"]} if "w_warmup_epochs" in info else {}),
                       "heldout_llr": round(info["heldout_llr"], 3),
                       **{key: info[key] for key in ("fitted_w_splits", "heldout_w_splits", "heldout_llr_splits",
                                                     "heldout_llr_error_splits", "chosen_splits",
                                                     "fitted_w_all_splits", "heldout_w_all_splits")
                          if key in info},
                       **({"test_auc_splits": split_test_aucs(method, test, window)}
                          if len(method.splits_) > 1 else {}),
                       **({"background_flow": info["background_flow"]} if "background_flow" in info else {}),
                       **(background_error(method.background_flow_.log_prob, test, window)
                          if background.startswith("flow") and method.trend_ is None else {}),
                       "test_auc": round(roc_auc(test.label, score), 4),
                       "max_sic": round(sensitivity(test.label, score)["max_sic"], 3),
                       "seconds": round(time.perf_counter() - started, 1)}
                if args.save_flows is not None and background == "flow":
                    row["saved_to"] = str(method.background_flow_.save(args.save_flows / f"nsig{n_sig}-seed{seed}"))
                print(json.dumps(row, default=str), flush=True)
                rows.append(row)
    write_rows(args.output, "tests/benchmarks/ranode_background.py", argv, window, rows)
    return rows


if __name__ == "__main__":
    main()
