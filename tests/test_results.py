import json

from adbench.results import ResultStore, latest_records


def rec(method="a", status="ok", **extra):
    return dict(dataset="d", window="3.30-3.70", method=method, n_sig=1, seed=0, config_hash="h", status=status, **extra)


def test_append_load_and_resume_keys(tmp_path):
    store = ResultStore(tmp_path / "run")
    store.append(rec("a"))
    store.append(rec("b", status="failed"))
    assert [r["method"] for r in store.load()] == ["a", "b"]
    assert store.finished_keys() == {("d", "3.30-3.70", "a", 1, 0, "h")}


def test_torn_line_is_skipped_and_does_not_swallow_the_next(tmp_path):
    store = ResultStore(tmp_path)
    store.append(rec("a"))
    with open(store.path, "a") as handle:
        handle.write('{"dataset": "d", "wind')  # a crash mid-write
    store.append(rec("b"))
    assert [r["method"] for r in store.load()] == ["a", "b"]
    json.loads(store.path.read_text().splitlines()[-1])


def test_latest_records_prefers_success():
    records = [rec("a", status="failed", error="x"), rec("a", value=1), rec("a", status="failed", error="y")]
    latest = latest_records(records)
    assert len(latest) == 1 and latest[0]["status"] == "ok"
