import json
import math

import pytest

from adbench.results import SCHEMA_VERSION, Record, ResultStore, latest_records


def rec(method="a", status="ok", **extra):
    return Record(dataset="d", window="3.30-3.70", method=method, n_sig=1, seed=0, config_hash="h", status=status,
                  **extra)


def test_append_load_and_resume_keys(tmp_path):
    store = ResultStore(tmp_path / "run")
    store.append(rec("a", max_sic=2.5, stat_errors={"max_sic": 0.1}))
    store.append(rec("b", status="failed"))
    loaded = store.load()
    assert [r.method for r in loaded] == ["a", "b"]
    assert json.dumps(loaded[0].to_dict()) == json.dumps(rec("a", max_sic=2.5, stat_errors={"max_sic": 0.1}).to_dict())
    assert math.isnan(loaded[1].max_sic) and loaded[0].schema == SCHEMA_VERSION
    assert store.finished_keys() == {("d", "3.30-3.70", "a", 1, 0, "h")}


def test_torn_line_is_skipped_counted_and_does_not_swallow_the_next(tmp_path):
    store = ResultStore(tmp_path)
    store.append(rec("a"))
    with open(store.path, "a") as handle:
        handle.write('{"dataset": "d", "wind')  # a crash mid-write
    store.append(rec("b"))
    assert [r.method for r in store.load()] == ["a", "b"]
    assert store.skipped_lines == [2]
    json.loads(store.path.read_text().splitlines()[-1])


def test_latest_records_prefers_success():
    records = [rec("a", status="failed", error="x"), rec("a", max_sic=1.0), rec("a", status="failed", error="y")]
    latest = latest_records(records)
    assert len(latest) == 1 and latest[0].ok and latest[0].max_sic == 1.0


def test_schema_1_records_are_read_with_their_old_names():
    old = {"dataset": "d", "window": "w", "method": "m", "n_sig": 1, "seed": 0, "config_hash": "h",
           "sic_at_1e-3": 4.5, "sic_at_1e-4": None, "max_sic": 3.0, "future_field": 1}
    record = Record.from_dict(old)
    assert (record.schema, record.sic_1e3, record.max_sic) == (1, 4.5, 3.0) and math.isnan(record.sic_1e4)
    assert record.method_info["unknown_fields"] == ["future_field"]
    with pytest.raises(ValueError, match="key fields"):
        Record.from_dict({"dataset": "d"})


def test_signal_to_background_of_the_sr_data():
    record = rec(n_sr_data=10_100, n_sig_sr=100)
    assert record.n_background_sr == 10_000
    assert record.s_over_b == pytest.approx(0.01) and record.s_over_sqrt_b == pytest.approx(1.0)
    assert math.isnan(rec().s_over_b)


def test_schema_1_radot_with_projection_batches_is_named_as_its_variant():
    old = {"dataset": "d", "window": "w", "method": "radot", "n_sig": 1, "seed": 0, "config_hash": "h",
           "method_info": {"batch_order": "projection"}}
    assert Record.from_dict(old).variant == "radot-projection"
    assert Record.from_dict({**old, "method_info": {"batch_order": "random"}}).variant == ""
