"""The cost model behind --max-time and --plan (adbench/costs.py): how long each training and window
is guessed to take, from the measured table, the profile's epochs and the events it trains on."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from adbench.harness import MethodSpec, RunConfig
from adbench.planning import Plan
from adbench.windows import Window


def test_guesses_use_a_profiles_measured_row_or_scale_fast_by_epochs():
    """A profile with its own row in the table is taken as is; one without is fast's row times the
    ratio of its epochs to fast's (vcr's fast profile trains twice the family's 16 epochs)."""
    from adbench.costs import CPU_SECONDS, _reference_seconds
    from adbench.runconfig import MethodSpec

    cpu = MethodSpec.parse("sigma-context:cpu", "fast")
    assert _reference_seconds(cpu) == (CPU_SECONDS[("sigma-context", "cpu")], 1.0)
    paper_row, paper_ratio = _reference_seconds(MethodSpec.parse("sigma-context", "paper"))
    assert paper_row == CPU_SECONDS[("sigma-context", "fast")] and paper_ratio == 2000 / 16


def test_a_profile_that_extends_a_measured_one_is_guessed_from_its_row():
    """ranode:cpu-stretch extends cpu (measured: a spline background and five signal splits, 8 x
    fast's time), so it takes cpu's row, not fast's scaled by epochs; cathode:cpu, whose nearest
    measured ancestor is fast, scales fast's row by its epochs (40 / 10)."""
    from adbench.costs import CPU_SECONDS, SIGNAL_FIT_SHARE, _reference_seconds
    from adbench.runconfig import MethodSpec

    stretch = MethodSpec.parse("ranode:cpu-stretch", "fast")
    assert stretch.preset.lineage == ("cpu", "fast")
    assert _reference_seconds(stretch) == (CPU_SECONDS[("ranode", "cpu")], pytest.approx(1.0))
    cathode = MethodSpec.parse("cathode:cpu", "fast")
    assert _reference_seconds(cathode) == (CPU_SECONDS[("cathode", "fast")], 4.0)
    # cpu-ensemble extends cpu with three background flows: three times its background's share
    share = SIGNAL_FIT_SHARE["ranode"]["cpu"]
    ensemble = MethodSpec.parse("ranode:cpu-ensemble", "fast")
    assert _reference_seconds(ensemble) == (CPU_SECONDS[("ranode", "cpu")], pytest.approx((1 - share) * 3 + share))


def test_a_superseded_scan_says_why_and_is_not_offered_for_continuing(tmp_path):
    from adbench.run_status import read_status, write_status

    with pytest.raises(ValueError, match="needs a reason"):
        write_status(tmp_path, "superseded", "make reference-reports")
    with pytest.raises(ValueError, match="only a superseded run"):
        write_status(tmp_path, "time-boxed", "make reference-reports", 10, 2, reason="why")
    write_status(tmp_path, "superseded", "make reference-reports", 110, 39, reason="The generator changed.")
    note = read_status(tmp_path).incomplete_note()
    assert "Superseded scan, not to be continued" in note and "39 of its 110" in note
    assert "The generator changed." in note and "continues it" not in note


def test_ranode_guesses_count_its_signal_splits_and_their_steps():
    """R-ANODE's paper profile repeats a 15x longer signal fit at half the batch on 20 splits: its
    guess scales that share of fast's training by 600, the background's by the epochs; paper-gpu,
    without a signal table of its own, takes the settings' defaults (the same signal fit)."""
    from adbench.costs import SIGNAL_FIT_SHARE, _reference_seconds
    from adbench.runconfig import MethodSpec

    share = SIGNAL_FIT_SHARE["ranode"]["fast"]
    _, ratio = _reference_seconds(MethodSpec.parse("ranode", "paper"))
    assert ratio == pytest.approx((1 - share) * 100 / 10 + share * 600)
    _, gpu_ratio = _reference_seconds(MethodSpec.parse("ranode", "paper-gpu"))
    assert gpu_ratio == pytest.approx((1 - share) * 60 / 10 + share * 600)


def test_ranode_guesses_count_the_signal_steps_min_steps_adds_on_a_small_sr():
    """On lhco-100k's SR (about 4,500 data events of 100k) ``fast``'s 20 signal epochs would be 7
    steps each, 140 in all, and ``min_steps`` raises them to 143 epochs (1,001 steps); the signal share
    of the guess is costed per step against the reference SR's 20 x 218 steps, not per event. On a
    dataset of the reference size and SR the factor is 1."""
    from adbench.costs import REFERENCE_SR_EVENTS, SIGNAL_FIT_SHARE, _reference_seconds
    from adbench.evaluate import ClassifierConfig
    from adbench.runconfig import MethodSpec, make_model

    spec = MethodSpec.parse("ranode", "fast")
    train = make_model(spec, "cpu", 0, ClassifierConfig()).config.signal.train
    assert (train.epochs, train.batch_size, train.min_steps, train.val_fraction) == (20, 512, 1000, 0.2)
    small_steps = math.ceil(1000 / (3600 // 512)) * (3600 // 512)  # 4,500 events, 900 for validation
    reference_steps = 20 * (int(0.8 * REFERENCE_SR_EVENTS) // 512)
    share, scale = SIGNAL_FIT_SHARE["ranode"]["fast"], 100_000 / 1_100_000
    assert _reference_seconds(spec, REFERENCE_SR_EVENTS, 1.0)[1] == pytest.approx(1.0)
    assert _reference_seconds(spec, 4500, scale)[1] == pytest.approx(
        1 - share + share * small_steps / (scale * reference_steps))


def test_a_guess_scales_a_per_window_training_by_the_events_of_its_sidebands(small_dataset):
    """A background flow on the sidebands within 0.5 TeV of the SR trains on fewer events than the
    measured row's (everything outside the SR): its guessed training shrinks in proportion; the signal
    fits of R-ANODE, on the SR, do not."""
    from dataclasses import replace

    from adbench.costs import SIGNAL_FIT_SHARE, CostModel, _reference_seconds
    from adbench.methods.presets import load_preset

    counts = {None: 1000, 0.5: 400}
    for name in ("cathode", "ranode"):
        preset = load_preset(name, "fast")
        narrow = MethodSpec(name, replace(preset, params={**preset.params, "sideband_width": 0.5}))
        _, wide_ratio = _reference_seconds(MethodSpec.parse(name, "fast"), None, 1.0, counts.get)
        _, narrow_ratio = _reference_seconds(narrow, None, 1.0, counts.get)
        share = SIGNAL_FIT_SHARE.get(name, {}).get("fast", 0.0)
        assert wide_ratio == pytest.approx(1.0)
        assert narrow_ratio == pytest.approx((1 - share) * 0.4 + share)
    window = Window(3.3, 3.7)
    config = RunConfig(methods=[MethodSpec.parse("cathode", "fast")], windows=[window], n_sigs=[0], seeds=[0],
                       output=Path("unused"), bootstrap=0)
    model = CostModel(small_dataset, config, Plan([], 0, 0, {}), [], gpu=False)
    background = small_dataset.events.m[small_dataset.events.label == 0]
    assert model._sideband_events(window, 0.5) == int(window.in_sidebands(background, 0.5).sum())
    assert model._sideband_events(window, 0.5) < model._sideband_events(window, None)


@pytest.mark.parametrize("holdout", ["covered", "sr", "random"])
def test_a_guess_counts_the_sr_data_events_the_split_leaves(small_dataset, holdout):
    """The SR data events a guess assumes (R-ANODE's signal fits train on them) are those the split
    leaves, whatever the hold-out: none held out where an extra sample covers the window, a third of
    the background kept in the SR (``sr`` also thins the signal) or everywhere (``random``). Limit:
    5 binomial standard deviations of the kept background and of the injected signal in the SR."""
    from dataclasses import replace

    from adbench.costs import CostModel
    from adbench.data.dataset import HoldOut

    dataset = small_dataset if holdout == "covered" else replace(small_dataset, held_out=(),
                                                                 holdout=HoldOut(kind=holdout))
    window = Window(3.3, 3.7)
    config = RunConfig(methods=[MethodSpec.parse("ranode", "fast")], windows=[window], n_sigs=[1000],
                       seeds=[0], output=Path("unused"), bootstrap=0)
    model = CostModel(dataset, config, Plan([], 0, 0, {}), [], gpu=False)
    guess = model._sr_data_events(window, 1000)
    data = dataset.split(1000, 0, [window]).data
    actual = int(window.in_sr(data.m).sum())
    kept = 1.0 if holdout == "covered" else 1 / 3
    limit = 5 * math.sqrt(actual * (1 - kept) + 1000 * 0.25 + 1)
    print(f"{holdout}: guessed {guess} SR data events, the split has {actual}: {abs(guess - actual)} apart "
          f"(limit {limit:.0f})")
    assert abs(guess - actual) <= limit


def test_training_saved_by_an_earlier_attempt_is_not_costed_again(tmp_path, small_dataset):
    """A shared fit whose progress files hold its training (the last chunk of a time-boxed scan fitted
    it) costs only reading back; a partly saved one its remaining training; a damaged file, a save
    made on another kind of device or by another torch nothing; a window task at most its training."""
    import torch

    from adbench.costs import READ_BACK_SHARE, CostModel
    from adbench.harness import prepare
    from adbench.models.resume import task_directory
    from adbench.planning import describe

    config = RunConfig(methods=[MethodSpec.parse("sigma-context", "fast"), MethodSpec.parse("vcr", "fast")],
                       windows=[Window(3.3, 3.7)], n_sigs=[1000], seeds=[0, 1], output=tmp_path / "run",
                       bootstrap=0)
    plan, _, records = prepare(small_dataset, config)
    fit_a, fit_b = plan.fits
    vcr = next(task for task in plan.windows if task.spec.name == "vcr")
    resume = tmp_path / "resume"
    here = f"torch {torch.__version__}"

    def estimates():
        costs = CostModel(small_dataset, config, plan, records, False, str(resume))
        return costs.estimate(fit_a), costs.estimate(fit_b), costs.estimate(vcr)

    whole_a, whole_b, whole_vcr = estimates()
    assert whole_a.seconds == whole_b.seconds > 0 and 0 < whole_vcr.training < whole_vcr.seconds

    def save(task, name, seconds, device="cpu", version=here):
        folder = task_directory(str(resume), task.key)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"fingerprint": f"velocity|0|cfg|[]|[]|Net|{device}|{version}", "seconds": seconds},
                   folder / name)

    save(fit_a, "01-velocity.pt", 10 * whole_a.seconds)
    save(fit_b, "01-velocity.pt", whole_b.seconds / 4)
    save(fit_b, "02-velocity.pt", whole_b.seconds, device="cuda:0")  # trained afresh on this CPU
    save(fit_b, "03-velocity.pt", whole_b.seconds, version="torch 0.0")
    (task_directory(str(resume), fit_b.key) / "04-velocity.pt").write_bytes(b"not a torch file")
    save(vcr, "01-velocity.pt", 10 * whole_vcr.seconds)
    saved_a, saved_b, saved_vcr = estimates()
    print(f"fully saved fit: {saved_a.seconds:.1f} s of {whole_a.seconds:.1f}; a quarter saved: "
          f"{saved_b.seconds:.1f} s; a window whose training is saved: {saved_vcr.seconds:.1f} s of "
          f"{whole_vcr.seconds:.1f} (training {whole_vcr.training:.1f})")
    assert saved_a.seconds == pytest.approx(READ_BACK_SHARE * whole_a.seconds)
    assert saved_b.seconds == pytest.approx(0.75 * whole_b.seconds)
    expected_vcr = max(whole_vcr.seconds - whole_vcr.training, READ_BACK_SHARE * whole_vcr.seconds)
    assert saved_vcr.seconds == pytest.approx(expected_vcr)
    assert describe(fit_b, saved_b)["saved_s"] == pytest.approx(0.25 * whole_b.seconds, abs=0.1)
    assert "saved_s" not in describe(fit_a, whole_a)
    gpu_costs = CostModel(small_dataset, config, plan, records, True, str(resume))
    assert gpu_costs.estimate(fit_b).seconds == pytest.approx(READ_BACK_SHARE * whole_b.seconds)  # the cuda save
