"""The command line: every kind of bad input gives one line that names the problem, never a traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest

from adbench.cli import main
from adbench.data.features import LHCO_COLUMNS, derive_features
from tests.conftest import lhco_columns, write_lhco_file


@pytest.fixture(scope="module")
def lhco_file(tmp_path_factory):
    """A small labelled file in the official layout: 40k events, mjj uniform in 2-6 TeV, 10% signal."""
    path = tmp_path_factory.mktemp("lhco") / "small.h5"
    return write_lhco_file(path, lhco_columns(40_000, np.random.default_rng(0)))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
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


def test_missing_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, *run_args(tmp_path / "absent.h5", output=tmp_path / "o"))
    assert_one_line_error(code, err, "absent.h5", "file not found")


def test_missing_file_of_a_card_tells_how_to_fetch_it(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "idealized", "--dataset", "lhco", "--data-dir",
                           str(tmp_path), "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, "events_anomalydetection_v2.features.h5", "adbench data fetch lhco")


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


def test_signal_region_outside_the_data(capsys, lhco_file, tmp_path):
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--sr", "8,9", output=tmp_path / "o"))
    assert_one_line_error(code, err, "8-9 TeV", "outside the mjj range")


def test_malformed_signal_region(capsys, lhco_file, tmp_path):
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--sr", "3.7,3.3", output=tmp_path / "o"))
    assert_one_line_error(code, err, "low < high")


def test_n_sig_larger_than_the_signal_pool(capsys, lhco_file, tmp_path):
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--n-sig", "1000000", output=tmp_path / "o"))
    assert_one_line_error(code, err, "--n-sig 1000000", "signal pool")


def test_unknown_method(capsys, lhco_file, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "idealized,sigmaa", "--dataset", str(lhco_file),
                           "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, "unknown method 'sigmaa'", "sigma-context")


def test_unknown_dataset(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--methods", "idealized", "--dataset", "lhc0",
                           "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, "unknown dataset 'lhc0'", "synthetic")


def test_unknown_profile(capsys, lhco_file, tmp_path):
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--profile", "turbo", output=tmp_path / "o"))
    assert_one_line_error(code, err, "no profile 'turbo'")


def test_missing_flow_library_stops_before_loading_any_data(capsys, monkeypatch, tmp_path):
    pytest.importorskip("torch")
    from adbench.models import flows

    monkeypatch.setattr(flows, "_nflows_error", lambda: "ModuleNotFoundError: No module named 'nflows'")
    # the dataset file does not exist: the method check must come first
    code, _, err = run_cli(capsys, "run", "--methods", "idealized,cathode:paper-nflows", "--dataset",
                           str(tmp_path / "absent.h5"), "--output", str(tmp_path / "o"))
    assert_one_line_error(code, err, "'nflows' is not installed", "pip install nflows")
    assert not (tmp_path / "o").exists()


def test_cuda_without_a_gpu(capsys, lhco_file, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--device", "cuda", output=tmp_path / "o"))
    assert_one_line_error(code, err, "--device cuda", "no CUDA GPU")


def test_bad_integer_list(capsys, lhco_file, tmp_path):
    code, _, err = run_cli(capsys, *run_args(lhco_file, "--seeds", "0,one", output=tmp_path / "o"))
    assert_one_line_error(code, err, "--seeds", "'0,one'")


def test_report_without_results(capsys, tmp_path):
    code, _, err = run_cli(capsys, "report", str(tmp_path))
    assert_one_line_error(code, err, "results.jsonl", "no results file")


def test_run_on_a_file_writes_records_and_a_report(capsys, lhco_file, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "run", "--methods", "idealized,supervised", "--dataset", str(lhco_file),
                                "--n-sig", "400", "--no-progress", "--output", str(out))
    assert code == 0, err
    assert stdout.strip() == str(out / "report.md")
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["method"] for r in records) == ["idealized", "supervised"]
    assert all(r["status"] == "ok" and r["dataset"] == "small.h5" for r in records)
    assert (out / "report.html").is_file()


def test_methods_and_data_list(capsys):
    code, out, _ = run_cli(capsys, "methods")
    assert code == 0 and {"idealized", "supervised", "sigma-context", "cathode", "radot"} <= {
        line.split()[0] for line in out.splitlines()}
    code, out, _ = run_cli(capsys, "data", "list")
    assert code == 0 and "lhco" in out.split() and "synthetic" in out.split()


def test_import_is_light_and_version_answers():
    """`adbench --version` must answer fast: importing the CLI may not pull in torch or sklearn."""
    probe = ("import sys, adbench.cli; heavy = [m for m in ('torch', 'sklearn', 'scipy', 'matplotlib', 'h5py') "
             "if m in sys.modules]; print(heavy)")
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
