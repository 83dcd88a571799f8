"""The command line: every kind of bad input gives one line that names the problem, never a traceback,
and the plain arguments are refused before any data is read or any heavy library imported."""

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from adbench import cli
from adbench.cli import main
from adbench.data.cards import card_names, load_card
from adbench.data.features import LHCO_COLUMNS, derive_features
from tests.conftest import lhco_columns, write_lhco_file


@pytest.fixture(scope="module")
def lhco_file(tmp_path_factory):
    """A small labelled file in the official layout: 40k events, mjj uniform in 2-6 TeV, 10% signal."""
    path = tmp_path_factory.mktemp("lhco") / "small.h5"
    return write_lhco_file(path, lhco_columns(40_000, np.random.default_rng(0)))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("adbench: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def run_args(path, *extra: str, output="out") -> list[str]:
    return ["run", "--methods", "idealized", "--dataset", str(path), "--no-progress", "--no-report",
            "--output", str(output), *extra]


# --------------------------------------------------------------------------- refused before any work
#: (extra arguments, fragments of the one error line). {tmp} is a fresh folder, {file} an existing file.
BAD_RUN_ARGUMENTS = [
    (["--sr", "3.7,3.3"], ["--sr 3.7,3.3", "low < high"]),
    (["--sr", "3.3"], ["--sr expects LOW,HIGH"]),
    (["--sr", "3.3,nan"], ["--sr expects LOW,HIGH"]),
    (["--scan", "3.9,3.1,0.4"], ["--scan 3.9,3.1,0.4", "START (3.9) must be below STOP (3.1)"]),
    (["--scan", "3.1,3.3,0.4"], ["narrower than one window"]),
    (["--scan", "3.1,3.9,0.4,-0.1"], ["WIDTH and STEP must be positive"]),
    (["--scan", "3.1,3.9"], ["--scan expects START,STOP,WIDTH[,STEP]"]),
    (["--n-sig", "-1000"], ["--n-sig -1000", "must be >= 0"]),
    (["--n-sig", "1000,1000"], ["--n-sig lists 1000 twice"]),
    (["--n-sig", ""], ["--n-sig is empty"]),
    (["--seeds", "-1"], ["--seeds -1", "must be >= 0"]),
    (["--seeds", "0,one"], ["--seeds", "'0,one'"]),
    (["--seeds", str(2**32)], ["--seeds 4294967296", "must be <="]),
    (["--seeds", "3-1"], ["--seeds", "'3-1' runs backwards"]),
    (["--seeds", "0-2,1"], ["--seeds lists 1 twice"]),
    (["--template-size", "0"], ["--template-size 0", "positive"]),
    (["--template-size", "nan"], ["--template-size nan", "positive"]),
    (["--device", "gpu"], ["--device 'gpu'", "cpu, cuda, cuda:N or auto"]),
    (["--output", "{file}"], ["--output", "is an existing file"]),
    (["--output", "{file}/sub"], ["--output", "is a file, not a directory"]),
    (["--data-dir", "{tmp}/absent"], ["--data-dir", "no such folder"]),
    (["--dataset", "{tmp}"], ["--dataset", "is a folder", "--dataset lhco --data-dir"]),
    (["--dataset", "{tmp}/absent.h5"], ["absent.h5", "file not found"]),
    (["--dataset", "lhc0"], ["unknown dataset 'lhc0'", "synthetic"]),
    (["--dataset", "lhco", "--data-dir", "{tmp}"], ["events_anomalydetection_v2.features.h5",
                                                   "adbench data fetch lhco"]),
    (["--dataset", "lhco-100k", "--data-dir", "{tmp}"], ["has no download", "development folder",
                                                        "adbench data fetch lhco"]),
    (["--methods", "idealized,sigmaa"], ["unknown method 'sigmaa'", "sigma-context"]),
    (["--methods", ","], ["--methods is empty"]),
    (["--methods", "idealized,idealized"], ["--methods lists 'idealized'", "twice"]),
    (["--profile", "turbo"], ["no profile 'turbo'"]),
    (["--features", "all"], ["--features", "invalid choice"]),
]


def _expand(argv: list[str], tmp, existing_file) -> list[str]:
    return [a.replace("{tmp}", str(tmp)).replace("{file}", str(existing_file)) for a in argv]


@pytest.fixture()
def no_data_loads(monkeypatch):
    """Fails the test if a dataset were loaded or torch asked for a device."""
    import adbench.data.cards
    import adbench.environment

    def refuse(*args, **kwargs):
        raise AssertionError("reached a data load / device check before refusing the arguments")

    monkeypatch.setattr(adbench.data.cards, "load_dataset", refuse)
    monkeypatch.setattr(adbench.environment, "resolve_device", refuse)


@pytest.mark.parametrize(("extra", "fragments"), BAD_RUN_ARGUMENTS, ids=lambda v: " ".join(v)[:40])
def test_bad_run_arguments_are_refused_in_one_line_before_any_data_loads(capsys, tmp_path, no_data_loads, extra,
                                                                         fragments):
    existing = tmp_path / "a_file.txt"
    existing.write_text("not a directory")
    argv = ["run", "--methods", "idealized", "--dataset", "synthetic-small", "--output", str(tmp_path / "out")]
    code, out, err = run_cli(capsys, *argv, *_expand(extra, tmp_path, existing))
    assert_one_line_error(code, err, *(f.replace("{tmp}", str(tmp_path)) for f in fragments))
    assert err.count("\n") == 1 and out == ""
    assert not (tmp_path / "out").exists()


def test_bad_arguments_import_nothing_heavy(tmp_path):
    """The refusals above in a fresh interpreter: none of them may import torch, scikit-learn, scipy,
    h5py, matplotlib or tqdm (what makes a refusal take seconds). Prints how long each took."""
    existing = tmp_path / "a_file.txt"
    existing.write_text("x")
    cases = [_expand(extra, tmp_path, existing) for extra, _ in BAD_RUN_ARGUMENTS]
    probe = textwrap.dedent(f"""
        import contextlib, io, json, sys, time
        from adbench.cli import main
        times = []
        for extra in {json.dumps(cases)}:
            start = time.perf_counter()
            with contextlib.redirect_stderr(io.StringIO()):
                try:
                    code = main(["run", "--methods", "idealized", "--dataset", "synthetic-small",
                                 "--output", {json.dumps(str(tmp_path / "out"))}, *extra])
                except SystemExit as exit:
                    code = exit.code
            assert code == 2, extra
            times.append(time.perf_counter() - start)
        heavy = [m for m in ("torch", "sklearn", "scipy", "h5py", "matplotlib", "tqdm", "ot", "zuko")
                 if m in sys.modules]
        print(json.dumps({{"heavy": heavy, "slowest": max(times), "total": sum(times)}}))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"{len(cases)} refusals: slowest {report['slowest']:.3f} s, all together {report['total']:.2f} s "
          "(first one includes the method registry import)")
    assert report["heavy"] == []


def test_signal_region_outside_the_data(capsys, lhco_file, tmp_path):
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--sr", "8,9", output=tmp_path / "o"))
    assert_one_line_error(code, err, "8-9 TeV", "outside the mjj range")


def test_n_sig_larger_than_the_signal_pool(capsys, lhco_file, tmp_path):
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--n-sig", "1000000", output=tmp_path / "o"))
    assert_one_line_error(code, err, "--n-sig 1000000", "signal pool")


def test_corrupt_file(capsys, tmp_path):
    path = tmp_path / "corrupt.h5"
    path.write_bytes(b"\x89HDF\r\n" + bytes(range(256)) * 4)
    code, _, err = run_cli(capsys, *run_args(path, output=tmp_path / "o"))
    assert_one_line_error(code, err, "corrupt.h5", "cannot be read as HDF5")


def test_wrong_columns(capsys, tmp_path):
    columns = [c for c in LHCO_COLUMNS if c != "mj2"] + ["label"]
    values = np.delete(lhco_columns(100, np.random.default_rng(1)), LHCO_COLUMNS.index("mj2"), axis=1)
    path = write_lhco_file(tmp_path / "columns.h5", values, columns)
    code, _, err = run_cli(capsys, *run_args(path, output=tmp_path / "o"))
    assert_one_line_error(code, err, "columns.h5", "missing columns", "mj2")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_rows(capsys, tmp_path, bad):
    values = lhco_columns(100, np.random.default_rng(2))
    values[[7, 40], LHCO_COLUMNS.index("tau2j1")] = bad
    path = write_lhco_file(tmp_path / "nan.h5", values)
    code, _, err = run_cli(capsys, *run_args(path, output=tmp_path / "o"))
    assert_one_line_error(code, err, "nan.h5", "'tau2j1'", "2 NaN/inf values", "row 7")


def test_empty_signal_region(capsys, tmp_path):
    values = lhco_columns(6_000, np.random.default_rng(3))
    mjj, _ = derive_features(dict(zip(LHCO_COLUMNS, values.T, strict=False)))
    path = write_lhco_file(tmp_path / "gap.h5", values[(mjj < 3.2) | (mjj > 3.8)])
    code, _, err = run_cli(capsys, *run_args(path, "--sr", "3.3,3.7", "--n-sig", "100", output=tmp_path / "o"))
    assert_one_line_error(code, err, "3.3-3.7 TeV", "holds no events")


def test_missing_flow_library_stops_before_loading_any_data(capsys, monkeypatch, lhco_file, tmp_path, no_data_loads):
    pytest.importorskip("torch")
    import adbench.environment
    from adbench.models import flows

    monkeypatch.setattr(adbench.environment, "resolve_device", lambda device: "cpu")
    monkeypatch.setattr(flows, "_nflows_error", lambda: "ModuleNotFoundError: No module named 'nflows'")
    code, _, err = run_cli(capsys, "run", "--methods", "idealized,cathode:paper-nflows", "--dataset", str(lhco_file),
                           "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, "'nflows' is not installed", "pip install nflows")
    assert not (tmp_path / "o").exists()


def test_unwritable_output_directory(capsys, tmp_path, no_data_loads):
    import os

    if os.geteuid() == 0:
        target = "/proc/adbench-output"  # root writes anywhere else; /proc takes no new files
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        target = str(locked / "run")
    code, _, err = run_cli(capsys, *run_args("synthetic-small", output=target))
    assert_one_line_error(code, err, f"--output {target}", "cannot write in")


def test_cuda_without_a_gpu(capsys, lhco_file, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--device", "cuda", output=tmp_path / "o"))
    assert_one_line_error(code, err, "--device cuda", "no CUDA GPU")


def test_report_without_results(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", str(tmp_path))
    assert_one_line_error(code, err, "results.jsonl", "no results file")
    code, _, err = run_cli(capsys, "report", str(tmp_path / "absent"))
    assert_one_line_error(code, err, "absent", "no such directory")


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["run", "--output", "x"])
    _, err = capsys.readouterr()
    assert exit.value.code == 2 and err.count("\n") == 1
    assert err.startswith("adbench: error:") and "--methods" in err and "adbench run --help" in err


# --------------------------------------------------------------------------- runs, progress, interrupts
def test_run_on_a_file_writes_records_and_a_report(capsys, lhco_file, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "run", "--methods", "idealized,supervised", "--dataset", str(lhco_file),
                                "--n-sig", "400", "--no-progress", "--output", str(out))
    assert code == 0, err
    assert stdout.strip() == str(out / "report.md")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["method"] for r in records) == ["idealized", "supervised"]
    assert all(r["status"] == "ok" and r["dataset"] == "small.h5" for r in records)
    assert all(set(r["stat_errors"]) >= {"max_sic", "sic_1e3", "auc"} for r in records)
    assert (out / "report.html").is_file()
    assert "[1/2]" not in err  # --no-progress: silent


def test_one_line_per_finished_task_when_not_on_a_terminal(capsys, lhco_file, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "idealized,supervised", "--dataset", str(lhco_file),
                           "--n-sig", "400", "--no-report", "--output", str(tmp_path / "run"))
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("adbench: [")]
    assert len(lines) == 2, err
    assert lines[0].startswith("adbench: [1/2] idealized SR 3.30-3.70 N_sig 400 seed 0: max SIC ")
    assert lines[1].startswith("adbench: [2/2] supervised SR 3.30-3.70 N_sig 400 seed 0: max SIC ")
    assert "±" in lines[1] and "\r" not in err  # no bar drawn into a log
    # each line ends with the task's own time and the time since the run started
    assert all(re.search(r"\(\d+\.\d (s|min), \d+\.\d (s|min) into the run\)$", line) for line in lines), lines


def test_task_lines_print_the_tasks_own_time_not_the_gap_between_lines(tmp_path):
    import io

    from adbench.console import TaskLines

    results = tmp_path / "results.jsonl"
    results.write_text(json.dumps({"method": "cathode", "window": "3.30-3.70", "n_sig": 1000, "seed": 3,
                                   "status": "ok", "max_sic": 8.75}) + "\n")
    stream = io.StringIO()
    lines = TaskLines(total=2, results=results, stream=stream)
    lines.task_seconds(2790.0)  # a task that ran 46.5 minutes beside another, finishing just after it
    lines.update(1)
    lines.update(1)  # no task time handed over: the time since the previous line
    first, second = stream.getvalue().splitlines()
    assert first.startswith("adbench: [1/2] cathode SR 3.30-3.70 N_sig 1000 seed 3: max SIC 8.75 (46.5 min, ")
    assert second.startswith("adbench: [2/2] cathode") and "(46.5 min" not in second


def test_bars_for_tasks_and_inner_loops_on_a_terminal(capsys, monkeypatch, lhco_file, tmp_path):
    """On a terminal: a task bar, and a bar for RAD-OT's OT batches (reported through adbench.progress)."""
    pytest.importorskip("ot")
    from adbench import console

    monkeypatch.setattr(console, "interactive", lambda stream=None: True)
    code, _, err = run_cli(capsys, "run", "--methods", "radot", "--dataset", str(lhco_file), "--n-sig", "400",
                           "--no-report", "--output", str(tmp_path / "run"))
    assert code == 0, err
    assert "adbench:" in err and "1/1" in err and "task" in err  # the tqdm task bar
    assert "OT batches" in err  # the inner bar
    assert "[1/1]" not in err  # no plain lines on a terminal
    # RAD-OT reuses sideband pairs: its fidelity AUCs' null errors count the distinct source events
    from adbench.evaluate import auc_null
    from adbench.results import ResultStore

    (record,) = ResultStore(tmp_path / "run").load()
    assert 0 < record.n_template_sources < record.n_template
    expected = auc_null(record.n_template_sources, record.n_test_background).std
    assert record.stat_errors["fidelity_auc"] == pytest.approx(expected)
    assert expected > auc_null(record.n_template, record.n_test_background).std


def test_ctrl_c_before_any_task_finished_claims_no_file(capsys, monkeypatch, lhco_file, tmp_path):
    import adbench.harness

    def interrupted(dataset, config, progress=None, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(adbench.harness, "run_benchmark", interrupted)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, *run_args(lhco_file, output=out))
    assert code == 130
    assert "no results were written" in err and "results.jsonl" not in err
    assert not (out / "results.jsonl").exists()


def test_ctrl_c_after_a_task_says_what_was_kept(capsys, monkeypatch, lhco_file, tmp_path):
    import adbench.harness

    real = adbench.harness.run_benchmark

    def one_then_interrupt(dataset, config, progress=None, **kwargs):
        config.n_sigs = config.n_sigs[:1]
        real(dataset, config)
        raise KeyboardInterrupt

    monkeypatch.setattr(adbench.harness, "run_benchmark", one_then_interrupt)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--n-sig", "400,800", output=out))
    assert code == 130
    assert f"the 1 task(s) this run finished are kept in {out / 'results.jsonl'}" in err
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--n-sig", "400,800", output=out))
    assert code == 130 and "holds the 1 earlier record(s)" in err


# --------------------------------------------------------------------------- help and data commands
def test_run_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: synthetic)", "(default: 1000)", "(default: 0)", "(default: auto)", "(default: fast)",
                    "(default: 4.0)", "(default: the dataset's, 3.3,3.7)"):
        assert default in text, default


def test_methods_and_data_list(capsys):
    code, out, _ = run_cli(capsys, "methods")
    assert code == 0 and {"idealized", "supervised", "sigma-context", "cathode", "radot"} <= {
        line.split()[0] for line in out.splitlines()}
    lines = out.splitlines()
    profiles = {name: line.split("profiles: ")[1] for name, line in zip(lines, lines[1:], strict=False)
                if "profiles: " in line}
    cathode = next(value for name, value in profiles.items() if name.startswith("cathode "))
    assert cathode.startswith("fast, cpu (cathode+nsf), paper") and "fast-edge (cathode+edge)" in cathode
    radot = next(value for name, value in profiles.items() if name.startswith("radot "))
    assert radot == "fast (radot-projection), paper"
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0 and "lhco" in out.split() and "synthetic" in out.split()


def test_data_list_keeps_whole_descriptions_and_says_where_files_come_from(capsys):
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0
    flowing = " ".join(out.split())
    for name in card_names():
        description = " ".join(load_card(name).description.split())
        assert description in flowing, name  # every word whole, none cut
    assert "nothing to fetch" in flowing  # synthetic
    assert "adbench data fetch lhco --dir DIR" in flowing
    assert "no download: kept in the development folder ../shared/data/lhco-100k" in flowing


def test_data_fetch_of_a_generated_or_development_only_dataset(capsys, tmp_path):
    code, out, err = run_cli(capsys, "data", "fetch", "synthetic", "--dir", str(tmp_path))
    assert code == 0 and "nothing to fetch" in out and not any(tmp_path.iterdir())
    code, _, err = run_cli(capsys, "data", "fetch", "lhco-100k", "--dir", str(tmp_path))
    assert_one_line_error(code, err, "'lhco-100k' has no download", "development folder", "adbench data fetch lhco")


def test_import_is_light_and_version_answers():
    """`adbench --version` must answer fast: importing the CLI may not pull in torch or sklearn."""
    probe = ("import sys, adbench.cli; heavy = [m for m in ('torch', 'sklearn', 'scipy', 'matplotlib', 'h5py', "
             "'numpy', 'tqdm') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    result = subprocess.run([sys.executable, "-m", "adbench", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("adbench ")


def test_calibrate_synthetic_writes_where_it_is_told(capsys, lhco_file, tmp_path):
    target = tmp_path / "calibration.json"
    code, out, err = run_cli(capsys, "data", "calibrate-synthetic", str(lhco_file), "--output", str(target))
    assert code == 0, err
    assert out.strip() == str(target)
    from adbench.data.synthetic import load_calibration

    model = load_calibration(target)
    assert "small.h5" in model.source and len(model.background.weights) == 8


def test_run_arguments_live_in_one_function():
    """Another command taking the same run description (e.g. a planner) reuses add_run_arguments."""
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_run_arguments(parser)
    args = parser.parse_args(["--methods", "radot", "--output", "x"])
    assert args.n_sig == "1000" and args.template_size == 4.0 and args.dataset == "synthetic"


def test_seeds_and_n_sig_take_inclusive_ranges():
    from adbench.arguments import int_list

    assert int_list("0-3,7", "--seeds") == [0, 1, 2, 3, 7]
    assert int_list("1000", "--n-sig") == [1000]


def test_results_of_a_replaced_data_file_are_not_mixed_with_the_old(capsys, tmp_path):
    """Records carry the first digits of the data file's sha256 (the report shows them): after the
    file is replaced by other events of the same size, a run into the same directory is refused in one
    line, and a worker that reads other files than the client refuses too."""
    from adbench.data.fetch import sha256sum
    from adbench.errors import DataError
    from adbench.results import ResultStore
    from adbench.tasks import DatasetRef, TaskContext, resolve_dataset

    path = write_lhco_file(tmp_path / "data.h5", lhco_columns(20_000, np.random.default_rng(0)))
    first = sha256sum(path)[:16]
    code, _, err = run_cli(capsys, *run_args(path, output=tmp_path / "out"))
    assert code == 0, err
    (record,) = ResultStore(tmp_path / "out").load()
    assert record.dataset_digest == first
    assert main(["report", str(tmp_path / "out")]) == 0
    assert f"| data files (sha256) | data.h5 {first} |" in (tmp_path / "out" / "report.md").read_text()
    write_lhco_file(path, lhco_columns(20_000, np.random.default_rng(1)))
    code, _, err = run_cli(capsys, *run_args(path, output=tmp_path / "out"))
    assert_one_line_error(code, err, "other data files", first, sha256sum(path)[:16], "new --output")

    ref = DatasetRef.card(str(path))
    context = TaskContext(None, "data.h5", (), {}, "", dataset_digest=first)
    with pytest.raises(DataError, match="a worker read dataset 'data.h5' from files with sha256"):
        resolve_dataset(ref, context)
