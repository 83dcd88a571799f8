"""How far a learnt background density is from the truth in the SR: KL(q || p_bkg) on ``synthetic``.

Not a unit test. CATHODE, ANODE and R-ANODE share one background flow p_bkg(x | m), trained on the
sidebands and interpolated into the SR. On ``synthetic`` the generator's density q(x | m) is known
(``SmoothMixture.log_prob``), so the flow's error in the SR can be measured directly, with no
classifier or signal fit on top (``background_error``), on the test set's SR events, which no density
trained on:

- KL(q || p_bkg) = E_q[ln q - ln p_bkg] in nats per event over its background, with its standard
  error (about 0.0005-0.001 nats), over the whole SR and in four equal mass slices of it;
- the same mean in each decile of each feature, and the largest of these: a local excess of true
  background over p_bkg, which R-ANODE's signal model can take up as signal, where the KL averages it
  away;
- the mean of ln q - ln p_bkg over its signal: how much background p_bkg lacks where the signal sits.

It costs one flow training, about three quarters of an R-ANODE row of ``ranode_background.py`` (whose
rows give the same numbers), so variants of the flow can be compared quickly, e.g. with the affine
``fast`` flow before the ``cpu`` spline flow::

    .venv/bin/python tests/benchmarks/background_kl.py --profile cpu --seeds 0,1,2 \\
        --mass-context log-mass --output reports/background-kl-cpu.json

The flow is the one of ``--method``'s profile (``ranode``, ``anode`` and ``cathode`` train the same
one; profiles with a mass trend model other features and are refused). ``--epochs``, ``--kind``,
``--transforms``, ``--hidden``, ``--bins``, ``--mass-context``, ``--spline-bound`` and ``--sideband-width`` change it;
``--flow-seed-offset K`` trains it from the seed + K; ``--sr-events N`` trains it instead on N
background events drawn from the generator inside the SR: a flow that needs no interpolation, the floor
the sideband flow is measured against. ``--fill-sr`` adds to the sidebands as many generated SR
background events as the data have in the SR: a flow over every mass with no gap, so that its KL against
the sideband flow's is the cost of the gap itself and against the SR flow's that of modelling every
mass at once. Prints one JSON line per flow.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

SR_SLICES = 4


def background_error(log_prob, test, window, slices: int = SR_SLICES) -> dict:
    """How far ``log_prob`` (x (n, d), m (n,) -> (n,) log-density per unit of x) is from the generator's
    background density q(x | m), on ``test``'s events in ``window``'s SR, each with its standard error:

    - ``background_kl``: KL(q || p) in nats per event, the mean of ln q - ln p over the background
      events, also per equal mass slice of the SR (``background_kl_slices``);
    - ``log_ratio_at_signal``: the mean of ln q - ln p over the signal events, i.e. by how much p lacks
      background where the signal sits: the excess a signal model can take up along with the signal
      (positive: too little background there, so a fitted signal fraction comes out high).
    """
    from adbench.data.synthetic import load_calibration

    background_model = load_calibration().background
    out = {}
    for name, events in (("background_kl", test.select(test.label == 0)),
                         ("log_ratio_at_signal", test.select(test.label == 1))):
        if len(events) < 2:
            continue
        log_ratio = background_model.log_prob(events.m, events.x) - log_prob(events.x, events.m)
        out |= {name: round(float(log_ratio.mean()), 5),
                f"{name}_error": round(float(log_ratio.std(ddof=1) / np.sqrt(len(log_ratio))), 5),
                f"{name}_events": len(log_ratio)}
        if name == "background_kl":
            edges = np.linspace(window.low, window.high, slices + 1)
            which = np.clip(np.searchsorted(edges, events.m, side="right") - 1, 0, slices - 1)
            out["background_kl_slices"] = [round(float(log_ratio[which == k].mean()), 5) for k in range(slices)]
            out["background_kl_slice_edges"] = [round(float(e), 4) for e in edges]
            out |= decile_log_ratios(events, log_ratio)
    return out


def decile_log_ratios(events, log_ratio: np.ndarray, parts: int = 10) -> dict:
    """The mean of ``log_ratio`` (n,) in each decile of each feature of ``events``, and the largest of them
    with its feature and decile: where the density lacks background most (a local excess a signal model
    can take up, which the KL averages away)."""
    deciles = {}
    for j, name in enumerate(events.features):
        edges = np.quantile(events.x[:, j], np.linspace(0, 1, parts + 1))
        which = np.clip(np.searchsorted(edges, events.x[:, j], side="right") - 1, 0, parts - 1)
        deciles[name] = [round(float(log_ratio[which == k].mean()), 4) if (which == k).any() else None
                         for k in range(parts)]
    largest = max(((value, name, k) for name, values in deciles.items() for k, value in enumerate(values)
                   if value is not None), default=None)
    return {"background_log_ratio_deciles": deciles,
            **({"largest_decile_log_ratio": {"feature": largest[1], "decile": largest[2] + 1, "value": largest[0]}}
               if largest is not None else {})}


def generated_sr_background(model, window, n: int, features, seed: int):
    """``n`` background events drawn from the generator with masses in ``window``'s SR."""
    rng = np.random.default_rng([seed, 1729])
    return model.sample_background(n, rng, (window.low, window.high)).with_features(features)


#: The ``FlowConfig`` fields the ``--{prefix}*`` options of ``add_flow_arguments`` set, and the rows record.
FLOW_OPTIONS = ("kind", "transforms", "hidden", "bins", "mass_context", "spline_bound")


def flow_settings(settings: dict, args: argparse.Namespace) -> dict:
    """The profile's settings with the background flow's options of ``args`` applied (those that are
    not None): ``background_epochs``, ``background_<key>`` for each key of ``FLOW_OPTIONS`` and
    ``background_sideband_width``."""
    if args.background_epochs is not None:
        settings = {**settings, "train": {**settings["train"], "epochs": args.background_epochs}}
    for key in FLOW_OPTIONS:
        if getattr(args, f"background_{key}") is not None:
            settings = {**settings, "flow": {**settings["flow"], key: getattr(args, f"background_{key}")}}
    if args.background_sideband_width is not None:
        settings = {**settings, "sideband_width": args.background_sideband_width}
    return settings


def add_flow_arguments(parser: argparse.ArgumentParser, prefix: str) -> None:
    """The options ``flow_settings`` reads, as ``--{prefix}epochs`` etc."""
    parser.add_argument(f"--{prefix}epochs", dest="background_epochs", type=int, default=None,
                        help="train the background flow for this many epochs instead of the profile's")
    parser.add_argument(f"--{prefix}kind", dest="background_kind", choices=("maf", "nsf"), default=None,
                        help="the background flow's kind (FlowConfig.kind)")
    parser.add_argument(f"--{prefix}transforms", dest="background_transforms", type=int, default=None,
                        help="the background flow's transforms")
    parser.add_argument(f"--{prefix}hidden", dest="background_hidden", type=int, default=None,
                        help="the background flow's hidden units")
    parser.add_argument(f"--{prefix}bins", dest="background_bins", type=int, default=None,
                        help="the spline flow's bins per feature (FlowConfig.bins)")
    parser.add_argument(f"--{prefix}mass-context", dest="background_mass_context", choices=("mass", "log-mass"),
                        default=None, help="the background flow's mass context (FlowConfig.mass_context)")
    parser.add_argument(f"--{prefix}spline-bound", dest="background_spline_bound", type=spline_bound, default=None,
                        help="the spline flow's range [-bound, bound] of the scaled features, or 'cover': all "
                             "the scaler can give (FlowConfig.spline_bound)")
    parser.add_argument(f"--{prefix}sideband-width", dest="background_sideband_width", type=float, default=None,
                        help="train the background flow on the events within this many TeV of the SR only")


def spline_bound(text: str) -> float | str:
    """``--spline-bound``'s value: a number or ``cover``."""
    from adbench.models.flows import COVER

    return text if text == COVER else float(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sr", default="3.3,3.7")
    parser.add_argument("--n-sig", default="1000")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--method", choices=("ranode", "anode", "cathode"), default="ranode")
    parser.add_argument("--profile", default="cpu")
    add_flow_arguments(parser, "")
    parser.add_argument("--flow-seed-offset", type=int, default=0)
    parser.add_argument("--sr-events", type=int, default=None,
                        help="train on this many generated SR background events instead of the sidebands")
    parser.add_argument("--fill-sr", action="store_true",
                        help="add to the sidebands as many generated SR background events as the data have in "
                             "the SR: a flow over every mass, with no gap to interpolate across")
    parser.add_argument("--save-flows", type=Path, default=None,
                        help="save each flow (ConditionalFlow.save) into a folder of this one, named by N_sig and seed")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the rows")
    args = parser.parse_args(argv)
    if args.sr_events is not None and (args.sr_events < 1000 or args.background_sideband_width is not None
                                       or args.fill_sr):
        parser.error("--sr-events needs at least 1000 events, and neither --sideband-width nor --fill-sr")
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    import torch

    from adbench.arguments import make_windows, parse_windows
    from adbench.data.cards import load_dataset
    from adbench.data.events import Events
    from adbench.data.synthetic import load_calibration
    from adbench.errors import ConfigError
    from adbench.methods.presets import load_preset
    from adbench.methods.registry import get_method_class
    from adbench.preprocessing import LogitScaler
    from adbench.settings import build_settings

    torch.set_num_threads(args.threads)
    (window,) = make_windows(parse_windows(args.sr, None))
    method_class = get_method_class(args.method)
    settings = flow_settings(load_preset(args.method, args.profile).params, args)
    try:
        config = build_settings(method_class.Settings, settings, f"{args.method}:{args.profile} settings")
    except ConfigError as error:
        raise SystemExit(f"{args.method}:{args.profile} with these options: {error}") from None
    if getattr(config, "mass_trend", None):
        raise SystemExit(f"{args.method}:{args.profile} has a mass trend: its flow models other features "
                         "than the generator's; choose a profile without one")
    dataset = load_dataset("synthetic")
    rows = []
    for n_sig in (int(v) for v in args.n_sig.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            split = dataset.split(n_sig, seed, [window])
            method = method_class(seed=seed, settings=settings)
            if args.sr_events is not None:
                events = generated_sr_background(load_calibration(), window, args.sr_events,
                                                 split.data.features, seed)
            else:
                events = method._sidebands(split.data, window)
            if args.fill_sr:
                n_sr = int(window.in_sr(split.data.m).sum())
                events = Events.concatenate([events, generated_sr_background(
                    load_calibration(), window, n_sr, split.data.features, seed)])
            started = time.perf_counter()
            # as the methods do: ANODE and R-ANODE scale on all events, CATHODE on its training events
            scaler = None if args.method == "cathode" else LogitScaler().fit(split.data.x)
            flow = method._new_flow(seed + args.flow_seed_offset).fit(events.x, events.m, scaler)
            test = split.test_in(window)
            row = {"n_sig": n_sig, "seed": seed, "method": args.method, "profile": args.profile,
                   "trained_on": ("generated SR background" if args.sr_events is not None
                                  else "sidebands and generated SR background" if args.fill_sr else "sidebands"),
                   "events": len(events), "epochs": config.train.epochs,
                   "sideband_width": getattr(config, "sideband_width", None),
                   "flow_seed_offset": args.flow_seed_offset,
                   **{key: getattr(config.flow, key)
                      for key in FLOW_OPTIONS},
                   **background_error(flow.log_prob, test, window),
                   "flow": flow.info(), "seconds": round(time.perf_counter() - started, 1)}
            if args.save_flows is not None:
                row["saved_to"] = str(flow.save(args.save_flows / f"nsig{n_sig}-seed{seed}"))
            print(json.dumps(row, default=str), flush=True)
            rows.append(row)
    write_rows(args.output, "tests/benchmarks/background_kl.py", argv, window, rows)
    return rows


def write_rows(output: Path | None, script: str, argv: list[str] | None, window, rows: list[dict]) -> None:
    """Write ``rows`` with the command that made them, the window and the environment to ``output``
    (nothing when None)."""
    from adbench.environment import environment_summary

    if output is None:
        return
    command = " ".join([script, *(argv if argv is not None else sys.argv[1:])])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"command": command, "window": str(window),
                                  "environment": environment_summary("cpu"), "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
