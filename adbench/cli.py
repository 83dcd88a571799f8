"""Command line: a thin layer that parses, checks, calls the library and prints one-line errors.

Every argument of ``adbench run`` is checked (``adbench.arguments``) before torch is imported or any
data is read; every user error ends as one ``adbench: error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any, NoReturn

from adbench import __version__
from adbench.errors import AdbenchError, ConfigError, DataError

log = logging.getLogger("adbench")


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (the usage stays one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"adbench: error: {message} (see '{self.prog} --help')\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Shows every option's default (unless the help text already names it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and "%(default)" not in text and "default" not in text
                and default not in (None, False, argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The options of ``adbench run`` (and of any command that takes the same run description)."""
    run.add_argument("--methods", required=True,
                     help="comma-separated method names, each optionally NAME:PROFILE (see 'adbench methods')")
    run.add_argument("--dataset", default="synthetic",
                     help="dataset card name (see 'adbench data list') or the path of a labelled LHCO-layout .h5 file")
    run.add_argument("--data-dir", help="folder with the dataset's files (default: the card's)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--sr", help="signal region LOW,HIGH in TeV (default: the dataset's, 3.3,3.7)")
    where.add_argument("--scan", help="sliding windows START,STOP,WIDTH[,STEP] in TeV, e.g. 3.1,3.9,0.4,0.2")
    run.add_argument("--n-sig", default="1000", help="injected signal events, comma-separated")
    run.add_argument("--seeds", default="0", help="seeds, comma-separated non-negative integers")
    run.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (a GPU when torch sees one)")
    run.add_argument("--profile", default="fast",
                     help="preset profile: fast, paper, or an extra profile of the methods' presets (e.g. "
                          "paper-gpu); NAME:PROFILE in --methods overrides it per method")
    run.add_argument("--features", choices=["sigma", "cathode"],
                     help="feature set: sigma (5 features) or cathode (4) (default: the dataset's)")
    run.add_argument("--template-size", type=float, default=4.0,
                     help="template events per SR data event, the same for every method")
    run.add_argument("--output", required=True, help="run directory (results.jsonl, report.md, report.html)")
    run.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress output (by default: bars on a terminal, else one line per finished task)")


def build_parser() -> argparse.ArgumentParser:
    """Every command and option of the command line."""
    parser = _Parser(prog="adbench", formatter_class=_HelpFormatter,
                     description="Benchmark background-template methods for resonant anomaly detection.")
    parser.add_argument("--version", action="version", version=f"adbench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run methods on a dataset and write results + report",
                         formatter_class=_HelpFormatter)
    add_run_arguments(run)
    from adbench.executors.cli import add_executor_arguments, add_plan_command

    add_executor_arguments(run)
    add_plan_command(sub, _HelpFormatter)

    report = sub.add_parser("report", help="write DIR/report.md and DIR/report.html from DIR/results.jsonl")
    report.add_argument("directory")

    sub.add_parser("methods", help="list the registered methods")

    data = sub.add_parser("data", help="dataset utilities").add_subparsers(dest="data_command", required=True,
                                                                          metavar="DATA_COMMAND")
    data.add_parser("list", help="list the dataset cards and where their files come from")
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


def load_run(args: argparse.Namespace) -> tuple[Any, Any]:
    """Check the arguments (fast, nothing loaded), then the methods on the device, then load the
    dataset: returns (dataset, RunConfig)."""
    from adbench.arguments import make_windows, validate_run

    request = validate_run(args)
    from adbench.data.cards import load_dataset
    from adbench.executors.cli import resolve_run_device
    from adbench.harness import RunConfig, check_methods
    from adbench.windows import Window

    device = resolve_run_device(args, request.device)
    check_methods(request.methods, device)
    dataset = load_dataset(request.dataset, request.data_dir, request.features)
    windows = make_windows(request.windows) or [Window(dataset.default_window.low, dataset.default_window.high)]
    for n_sig in request.n_sigs:
        if n_sig > dataset.n_signal_pool:
            raise ConfigError(
                f"--n-sig {n_sig} is larger than the signal pool of {args.dataset!r} ({dataset.n_signal_pool} events)"
            )
    config = RunConfig(
        methods=request.methods, windows=windows, n_sigs=request.n_sigs, seeds=request.seeds, output=request.output,
        device=device, template_size=request.template_size,
        command="adbench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
    )
    return dataset, config


def cmd_run(args: argparse.Namespace) -> int:
    from adbench.console import count_records, inner_bar_factory, interactive, task_bar_factory
    from adbench.executors.cli import check_executor_arguments, executor_from_args, left_message
    from adbench.progress import listening
    from adbench.run_status import write_status

    check_executor_arguments(args)
    dataset, config = load_run(args)
    executor = executor_from_args(args, config.device)
    from adbench.harness import run_benchmark

    print(
        f"adbench: {len(config.methods)} method(s) x {len(config.windows)} window(s) x {len(config.n_sigs)} N_sig x "
        f"{len(config.seeds)} seed(s) on {dataset.name} ({len(dataset.events):,} events), device {config.device}",
        file=sys.stderr,
    )
    results = config.output / "results.jsonl"
    before = count_records(results)
    bars = interactive() and not args.no_progress
    task_bar = None if args.no_progress else task_bar_factory(results, bars)
    command = shlex.join(["adbench", *args.argv])
    try:
        with listening(inner_bar_factory() if bars else None):
            summary = run_benchmark(dataset, config, progress=task_bar, executor=executor)
    except KeyboardInterrupt:
        write_status(config.output, "interrupted", command)
        print(interrupted_message(results, before), file=sys.stderr)
        return 130
    write_status(config.output, "time-boxed" if summary.left else "complete", command, summary.total, summary.left)
    print(
        f"adbench: {summary.finished} finished, {summary.failed} failed, {summary.skipped} already done "
        f"-> {summary.output}",
        file=sys.stderr,
    )
    if left_message(summary):
        print(left_message(summary), file=sys.stderr)
    if not args.no_report and (summary.finished or summary.failed or summary.skipped):
        from adbench.report import write_report

        paths = write_report(config.output)
        print(paths["markdown"])
    return 1 if summary.failed and not summary.finished else 0


def interrupted_message(results: Path, before: int) -> str:
    """What Ctrl-C leaves behind, as it is: new records kept, only older ones, or nothing at all."""
    from adbench.console import count_records

    kept = count_records(results) - before
    if kept > 0:
        return (f"adbench: interrupted; the {kept} task(s) this run finished are kept in {results} "
                "(run the same command again to resume)")
    if before > 0:
        return (f"adbench: interrupted before this run finished a task; {results} holds the {before} earlier "
                "record(s) (run the same command again to resume)")
    return "adbench: interrupted before any task finished; no results were written"


def cmd_report(args: argparse.Namespace) -> int:
    from adbench.report import write_report

    directory = Path(args.directory)
    if not directory.exists():
        raise DataError(f"{directory}: no such directory (the --output of an 'adbench run')")
    paths = write_report(directory)
    print(paths["markdown"])
    print(paths["html"])
    return 0


def cmd_methods(_: argparse.Namespace) -> int:
    from adbench.methods.presets import method_profiles
    from adbench.methods.registry import get_method_class, method_names

    for name in method_names():
        cls = get_method_class(name)
        kind = "per window" if cls.per_window else "trained once"
        aliases = f" (alias: {', '.join(cls.aliases)})" if cls.aliases else ""
        print(f"{name:16s} {cls.family or '-':28s} {kind:12s} {cls.produces}{aliases}")
        profiles = [f"{profile} ({variant})" if variant else profile
                    for profile, variant in method_profiles(name).items()]
        print(f"{'':16s} profiles: {', '.join(profiles)}")
    print("Run a profile with METHOD:PROFILE (e.g. cathode:cpu) or --profile; a profile named in brackets "
          "is not the published method and its results carry that name.")
    return 0


def card_source(card: Any) -> str:
    """Where a card's files come from, in one phrase."""
    if card.loader == "synthetic":
        return "generated on the fly (seconds): nothing to fetch"
    spec = card.files.get("features", {})
    if "url" in spec:
        return f"public: adbench data fetch {card.name} --dir DIR"
    if card.default_dir:
        here = (Path(__file__).resolve().parents[1] / card.default_dir).resolve() / spec.get("filename", "")
        state = "present here" if here.is_file() else "absent here"
        from adbench.arguments import PUBLIC_DATA_HINT

        return (f"no download: kept in the development folder {card.default_dir} ({state}); elsewhere give "
                f"--data-dir, or use {PUBLIC_DATA_HINT}")
    return "no download: give --data-dir"


def cmd_data(args: argparse.Namespace) -> int:
    from adbench.data.cards import card_names, load_card, load_dataset

    if args.data_command == "list":
        width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 120))
        for name in card_names():
            card = load_card(name)
            description = " ".join(card.description.split())
            print(textwrap.fill(description, width, initial_indent=f"{name:16s} ", subsequent_indent=" " * 17,
                                break_long_words=False, break_on_hyphens=False))
            print(textwrap.fill(f"files: {card_source(card)}", width, initial_indent=" " * 17,
                                subsequent_indent=" " * 19, break_long_words=False, break_on_hyphens=False))
        return 0
    if args.data_command == "fetch":
        from adbench.data.fetch import fetch_all

        card = load_card(args.name)
        if card.loader == "synthetic":
            print(f"adbench: {card.name} is generated on the fly (seconds, no files): nothing to fetch")
            return 0
        if not any("url" in spec for spec in card.files.values()):
            raise DataError(f"dataset {card.name!r} has {card_source(card)}")
        for path in fetch_all(card.remote_files(), Path(args.dir)):
            print(path)
        return 0
    if args.data_command == "info":
        from adbench.arguments import check_dataset

        check_dataset(args.name, args.data_dir)
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
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command line a status file repeats
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="adbench: %(levelname)s: %(message)s",
    )
    from adbench.executors.cli import cmd_plan

    handlers = {"run": cmd_run, "plan": cmd_plan, "report": cmd_report, "methods": cmd_methods, "data": cmd_data}
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
