"""Command line: a thin layer that parses, calls the library and prints one-line errors."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from adbench import __version__
from adbench.errors import AdbenchError, ConfigError

log = logging.getLogger("adbench")


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} expects comma-separated integers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{option} is empty")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adbench",
        description="Benchmark background-template methods for resonant anomaly detection.",
    )
    parser.add_argument("--version", action="version", version=f"adbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run methods on a dataset and write results + report")
    run.add_argument("--methods", required=True, help="comma-separated names, each optionally NAME:PROFILE")
    run.add_argument(
        "--dataset", default="synthetic",
        help="dataset card name (see 'adbench data list') or the path of a labelled LHCO-layout .h5 file",
    )
    run.add_argument("--data-dir", help="folder with the dataset's files")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--sr", help="signal region LOW,HIGH in TeV (default: the dataset's, 3.3,3.7)")
    where.add_argument("--scan", help="sliding windows START,STOP,WIDTH[,STEP] in TeV")
    run.add_argument("--n-sig", default="1000", help="injected signal events, comma-separated")
    run.add_argument("--seeds", default="0", help="seeds, comma-separated")
    run.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    run.add_argument(
        "--profile", default="fast",
        help="preset profile: fast (default), paper, or an extra profile of the methods' presets "
             "(e.g. paper-gpu); NAME:PROFILE in --methods overrides it per method",
    )
    run.add_argument("--features", choices=["sigma", "cathode"], help="feature set (default: the dataset's)")
    run.add_argument(
        "--template-size", type=float, default=4.0,
        help="template events per SR data event, the same for every method (default 4)",
    )
    run.add_argument("--output", required=True, help="run directory (results.jsonl, report)")
    run.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    report = sub.add_parser("report", help="write DIR/report.md and DIR/report.html from DIR/results.jsonl")
    report.add_argument("directory")

    sub.add_parser("methods", help="list the registered methods")

    data = sub.add_parser("data", help="dataset utilities").add_subparsers(dest="data_command", required=True)
    data.add_parser("list", help="list the dataset cards")
    fetch = data.add_parser("fetch", help="download a dataset's files (resumes, checks sha256)")
    fetch.add_argument("name")
    fetch.add_argument("--dir", required=True, help="target folder")
    info = data.add_parser("info", help="load a dataset and print its summary")
    info.add_argument("name")
    info.add_argument("--data-dir")
    calibrate = data.add_parser(
        "calibrate-synthetic", help="refit the synthetic generator to a labelled LHCO-layout file"
    )
    calibrate.add_argument("file")
    calibrate.add_argument(
        "--output", required=True,
        help="calibration JSON to write; use it with 'calibration = \"PATH\"' in a synthetic card's [synthetic] table",
    )
    calibrate.add_argument("--figure", help="also write a synthetic-versus-real comparison figure (PNG)")
    compare = data.add_parser("compare-synthetic", help="figure comparing the synthetic data with a real file")
    compare.add_argument("file")
    compare.add_argument("--output", required=True, help="PNG path")
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from adbench.data.cards import load_dataset
    from adbench.environment import resolve_device
    from adbench.harness import MethodSpec, RunConfig, check_methods, run_benchmark
    from adbench.windows import Window, parse_scan, parse_sr

    methods = [MethodSpec.parse(name, args.profile) for name in args.methods.split(",") if name.strip()]
    if not methods:
        raise ConfigError("--methods is empty")
    n_sigs = _int_list(args.n_sig, "--n-sig")
    seeds = _int_list(args.seeds, "--seeds")
    device = resolve_device(args.device)
    check_methods(methods, device)
    dataset = load_dataset(args.dataset, args.data_dir, args.features)
    if args.scan:
        windows = parse_scan(args.scan)
    elif args.sr:
        windows = [parse_sr(args.sr)]
    else:
        windows = [Window(dataset.default_window.low, dataset.default_window.high)]
    for n_sig in n_sigs:
        if n_sig > dataset.n_signal_pool:
            raise ConfigError(
                f"--n-sig {n_sig} is larger than the signal pool of {args.dataset!r} ({dataset.n_signal_pool} events)"
            )
    config = RunConfig(
        methods=methods, windows=windows, n_sigs=n_sigs, seeds=seeds, output=Path(args.output),
        device=device, template_size=args.template_size,
        command="adbench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    print(
        f"adbench: {len(methods)} method(s) x {len(windows)} window(s) x {len(n_sigs)} N_sig x "
        f"{len(seeds)} seed(s) on {dataset.name} ({len(dataset.events):,} events), device {device}",
        file=sys.stderr,
    )

    def bar(total: int):
        return tqdm(total=total, unit="task", desc="adbench", disable=args.no_progress or None)

    try:
        summary = run_benchmark(dataset, config, progress=bar)
    except KeyboardInterrupt:
        print(f"adbench: interrupted; finished results are kept in {config.output / 'results.jsonl'} "
              "(run the same command again to resume)", file=sys.stderr)
        return 130
    print(
        f"adbench: {summary.finished} finished, {summary.failed} failed, {summary.skipped} already done "
        f"-> {summary.output}",
        file=sys.stderr,
    )
    if not args.no_report:
        from adbench.report import write_report

        paths = write_report(config.output)
        print(paths["markdown"])
    return 1 if summary.failed and not summary.finished else 0


def cmd_report(args: argparse.Namespace) -> int:
    from adbench.report import write_report

    paths = write_report(Path(args.directory))
    print(paths["markdown"])
    print(paths["html"])
    return 0


def cmd_methods(_: argparse.Namespace) -> int:
    from adbench.methods.registry import get_method_class, method_names

    for name in method_names():
        cls = get_method_class(name)
        kind = "per window" if cls.per_window else "trained once"
        aliases = f" (alias: {', '.join(cls.aliases)})" if cls.aliases else ""
        print(f"{name:16s} {cls.family or '-':28s} {kind:12s} {cls.produces}{aliases}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from adbench.data.cards import card_names, load_card, load_dataset

    if args.data_command == "list":
        for name in card_names():
            print(f"{name:16s} {load_card(name).description.splitlines()[0][:100]}")
        return 0
    if args.data_command == "fetch":
        from adbench.data.fetch import fetch_all

        for path in fetch_all(load_card(args.name).remote_files(), Path(args.dir)):
            print(path)
        return 0
    if args.data_command == "info":
        dataset = load_dataset(args.name, args.data_dir)
        events = dataset.events
        w = dataset.default_window
        print(f"{dataset.name}: {len(events):,} events ({events.n_signal:,} signal), features {list(dataset.features)}")
        print(f"mjj range {events.m.min():.3f}-{events.m.max():.3f} TeV; {w}: "
              f"{int(w.in_sr(events.background().m).sum()):,} background events")
        for sample in dataset.held_out:
            print(f"held-out background: {len(sample.events):,} events of {sample.source} covering "
                  f"{sample.coverage[0]:g}-{sample.coverage[1]:g} TeV")
        holdout = dataset.holdout
        if holdout.kind != "none":
            print(f"windows no extra sample covers: {holdout.fraction:.0%} of the main background held out "
                  f"({holdout.kind})")
        return 0
    if args.data_command == "calibrate-synthetic":
        from adbench.data.fetch import sha256sum
        from adbench.data.lhco import load_lhco_events
        from adbench.data.synthetic import SyntheticModel

        events = load_lhco_events(args.file)
        model = SyntheticModel.fit(events, source=f"{Path(args.file).name} (sha256 {sha256sum(args.file)})")
        output = Path(args.output)
        output.write_text(model.to_json())
        print(output)
        if args.figure:
            from adbench.data.synthetic_compare import comparison_figure

            comparison_figure(events).savefig(args.figure, dpi=110)
            print(args.figure)
        return 0
    if args.data_command == "compare-synthetic":
        from adbench.data.lhco import load_lhco_events
        from adbench.data.synthetic_compare import comparison_figure

        comparison_figure(load_lhco_events(args.file)).savefig(args.output, dpi=110)
        print(args.output)
        return 0
    raise ConfigError(f"unknown data command {args.data_command!r}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="adbench: %(levelname)s: %(message)s",
    )
    handlers = {"run": cmd_run, "report": cmd_report, "methods": cmd_methods, "data": cmd_data}
    try:
        return handlers[args.command](args)
    except AdbenchError as error:
        if args.verbose:
            raise
        print(f"adbench: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("adbench: interrupted", file=sys.stderr)
        return 130
