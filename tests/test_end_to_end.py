"""A whole small benchmark on real LHCO events: CLI run, stored records, report (needs ../shared)."""

import numpy as np

from adbench.cli import main
from adbench.results import ResultStore
from tests.conftest import requires_lhco_100k, stored_auc_sigmas


@requires_lhco_100k
def test_small_benchmark_on_the_first_100k_real_events(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--methods", "idealized,supervised,radot", "--dataset", "lhco-100k", "--n-sig", "0,1500",
                 "--seeds", "0", "--no-progress", "--output", str(out)])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert stdout.strip() == str(out / "report.md")
    records = ResultStore(out).load()
    by = {(r.method, r.n_sig): r for r in records}
    assert len(by) == 6 and all(r.ok for r in records), [r.error for r in records]
    assert all(r.dataset == "lhco-100k" and r.device.startswith("CPU") for r in records)
    # without signal the true background is indistinguishable from the SR data (two-sided null);
    # RAD-OT's template comes close (0.2 TeV sidebands of 100k events are thin: 0.54 measured, a few
    # null deviations; the limit is the sigma tests' 12)
    for method, limit in (("idealized", 4.0), ("radot", 12.0)):
        r = by[(method, 0)]
        sigmas = stored_auc_sigmas(r.template_data_auc, r.n_template, r.n_sr_data, limit, f"{method} vs SR data")
        assert abs(sigmas) < limit
    # the SR hold-out of a fixed-size file: the idealized template is as large as the SR data
    assert by[("idealized", 0)].n_template >= 0.95 * by[("idealized", 0)].n_sr_data
    # 1500 injected of 100k events (S/B about 4% in the SR): the truth-labelled classifier finds it
    assert by[("supervised", 1500)].max_sic > 3
    assert by[("idealized", 1500)].max_sic > 1
    assert np.isfinite(by[("radot", 1500)].fidelity_auc)
    report = (out / "report.md").read_text()
    assert "| lhco-100k |" in report and "radot" in report
    assert "† fewer than" in report  # 100k events: SIC at FPR 1e-3 rests on a few test events
    assert "data:image/png;base64," in (out / "report.html").read_text()
