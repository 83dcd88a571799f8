"""The one training loop: split, schedules, model selection, EMA, divergence, progress, checkpoints.

A linear regression stands in for the generative models: it trains in milliseconds and its optimum
is known."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adbench.errors import ConfigError, MethodFailure  # noqa: E402
from adbench.models.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from adbench.models.training import (  # noqa: E402
    TrainConfig,
    _lr_factor,
    planned_epochs,
    steps_per_epoch,
    train_module,
    validation_split,
)
from adbench.progress import listening  # noqa: E402
from adbench.settings import hashed_settings  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SLOPE = torch.tensor([[2.0], [-1.0], [0.5]])


def regression(n: int = 2000, seed: int = 0) -> tuple[tuple, tuple]:
    """y = x @ SLOPE + noise, split 80/20: (train tensors, validation tensors)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    y = x @ SLOPE + 0.1 * torch.randn(n, 1, generator=generator)
    cut = int(0.8 * n)
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def mse(module, batch):
    x, y = batch
    return (module(x) - y).pow(2).mean()


def validate(module, data):
    with torch.no_grad():
        return float(mse(module, data))


def fit(config: TrainConfig, seed: int = 0, loss=mse, check=validate):
    train, val = regression()
    return train_module(lambda: torch.nn.Linear(3, 1), train, val, loss, check, config, seed=seed, device="cpu",
                        label="toy")


def test_validation_split_is_seeded_disjoint_and_subsamples():
    config = TrainConfig(val_fraction=0.25)
    train, val = validation_split(1000, config, seed=3)
    assert len(val) == 250 and len(train) == 750 and not set(train) & set(val)
    again = validation_split(1000, config, seed=3)
    assert np.array_equal(train, again[0]) and not np.array_equal(train, validation_split(1000, config, 4)[0])
    small = validation_split(1000, TrainConfig(val_fraction=0.25, max_events=400), seed=3)
    assert len(small[0]) + len(small[1]) == 400


def test_trains_to_the_known_optimum_and_keeps_the_best_epochs():
    trained = fit(TrainConfig(epochs=30, batch_size=64, lr=3e-2, keep_best=3))
    weight = trained.module.weight.detach().ravel()
    assert torch.allclose(weight, SLOPE.ravel(), atol=0.05)
    record = trained.record
    ranked = sorted(range(30), key=lambda i: record.val_losses[i])[:3]
    assert record.kept_epochs == [i + 1 for i in ranked] and len(trained.states) == 3
    assert record.best_val_loss == min(record.val_losses) and record.stopped == "epochs"
    # the module holds the best kept weights
    assert torch.equal(trained.module.weight, trained.states[0]["weight"])
    assert any(not torch.equal(trained.states[0]["weight"], state["weight"]) for state in trained.states[1:])


def test_same_seed_same_training():
    a, b = fit(TrainConfig(epochs=3, batch_size=64), seed=1), fit(TrainConfig(epochs=3, batch_size=64), seed=1)
    assert a.record.val_losses == b.record.val_losses
    assert a.record.val_losses != fit(TrainConfig(epochs=3, batch_size=64), seed=2).record.val_losses


def test_learning_rate_schedules():
    total = 100
    assert _lr_factor(0, 10, total, 0.0) == pytest.approx(0.1)  # one-cycle warm-up
    assert _lr_factor(9, 10, total, 0.0) == pytest.approx(1.0)
    assert _lr_factor(total, 10, total, 0.0) == pytest.approx(0.0)
    assert _lr_factor(total, 0, total, 0.01) == pytest.approx(0.01)  # cosine to a floor
    assert _lr_factor(50, 0, total, 0.0) == pytest.approx(0.5)


def test_plateau_factor_and_patience_are_used(monkeypatch):
    import torch.optim.lr_scheduler as schedulers

    seen = {}
    original = schedulers.ReduceLROnPlateau.__init__

    def spy(self, optimizer, **kwargs):
        seen.update(kwargs)
        original(self, optimizer, **kwargs)

    monkeypatch.setattr(schedulers.ReduceLROnPlateau, "__init__", spy)
    fit(TrainConfig(epochs=1, batch_size=64, schedule="plateau", plateau_factor=0.3, plateau_patience=7))
    assert seen == {"factor": 0.3, "patience": 7}


def test_ema_keeps_and_validates_the_averaged_weights():
    raw = fit(TrainConfig(epochs=4, batch_size=64, lr=5e-2, keep_best=1))
    ema = fit(TrainConfig(epochs=4, batch_size=64, lr=5e-2, keep_best=1, ema_decay=0.9))
    assert raw.record.train_losses == ema.record.train_losses  # the same optimisation...
    assert raw.record.val_losses != ema.record.val_losses  # ...validated on other weights
    assert not torch.equal(raw.states[0]["weight"], ema.states[0]["weight"])
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def test_divergence_keeps_the_finite_epochs_or_fails():
    calls = []

    def breaks_at_epoch_3(module, data):
        calls.append(1)
        return float("nan") if len(calls) >= 3 else validate(module, data)

    trained = fit(TrainConfig(epochs=6, batch_size=64, keep_best=5), check=breaks_at_epoch_3)
    assert trained.record.stopped == "diverged" and trained.record.epochs_run == 3
    assert sorted(trained.record.kept_epochs) == [1, 2]
    with pytest.raises(MethodFailure, match="toy training diverged at epoch 1"):
        fit(TrainConfig(epochs=3, batch_size=64), check=lambda module, data: float("nan"))


def test_patience_stops_when_nothing_improves():
    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7, 1.0])
    trained = fit(TrainConfig(epochs=6, batch_size=64, patience=3), check=lambda module, data: next(losses))
    assert trained.record.stopped == "patience" and trained.record.epochs_run == 5


def test_min_steps_adds_epochs_only_where_the_data_are_too_few_for_them():
    """25 steps per epoch (1600 training events, batches of 64): 2 epochs reach 40 steps, so a minimum of
    40 changes nothing and one of 100 trains ceil(100 / 25) = 4 epochs, the schedule spread over them."""
    from adbench.settings import hashed_settings

    config = TrainConfig(epochs=2, batch_size=64)
    assert steps_per_epoch(1600, config) == 25
    assert planned_epochs(1600, replace(config, min_steps=40)) == 2
    assert planned_epochs(1600, replace(config, min_steps=101)) == 5
    assert planned_epochs(1600, config) == 2 and planned_epochs(0, replace(config, min_steps=10)) == 2
    assert fit(replace(config, min_steps=40)).record.val_losses == fit(config).record.val_losses
    longer = fit(replace(config, min_steps=100, schedule="cosine"))
    assert longer.record.epochs_run == 4 and longer.record.stopped == "epochs"
    # a setting added after results were stored: absent from the task hash at its default only
    assert "min_steps" not in hashed_settings(config)
    assert hashed_settings(replace(config, min_steps=5))["min_steps"] == 5


def test_progress_reports_every_epoch_to_a_listener():
    events = []

    class Bar:
        def __init__(self, what, total):
            events.append(("open", what, total))

        def update(self, n=1):
            events.append(("step", n))

        def set_postfix_str(self, text):
            events.append(("note", text.split()[0]))

        def close(self):
            events.append(("close",))

    with listening(Bar):
        fit(TrainConfig(epochs=3, batch_size=64))
    assert events[0] == ("open", "toy epochs", 3) and events[-1] == ("close",)
    assert events.count(("step", 1)) == 3 and ("note", "validation") in events
    fit(TrainConfig(epochs=1, batch_size=64))  # nobody listening: nothing recorded, nothing fails
    assert len(events) == 8


def test_checkpoint_round_trip(tmp_path):
    trained = fit(TrainConfig(epochs=2, batch_size=64, keep_best=2))
    directory = save_checkpoint(tmp_path / "toy", "toy", {"answer": 42}, trained.states)
    meta, states = load_checkpoint(directory, "toy")
    assert meta == {"format": "adbench-toy/1", "answer": 42} and len(states) == 2
    assert all(torch.equal(states[k]["weight"], trained.states[k]["weight"]) for k in range(2))
    with pytest.raises(ConfigError, match="not an adbench flow checkpoint"):
        load_checkpoint(directory, "flow")


@pytest.mark.parametrize("bad", [dict(optimizer="sgd"), dict(schedule="linear"), dict(epochs=0),
                                 dict(final_lr_fraction=2.0), dict(plateau_factor=1.5), dict(patience=0),
                                 dict(min_steps=0)])
def test_bad_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def test_adam_and_adamw_differ_only_by_the_decay():
    a = fit(TrainConfig(epochs=2, batch_size=64, optimizer="adam", weight_decay=0.0))
    w = fit(TrainConfig(epochs=2, batch_size=64, optimizer="adamw", weight_decay=0.0))
    assert a.record.val_losses == pytest.approx(w.record.val_losses, rel=1e-5)
    decayed = fit(TrainConfig(epochs=2, batch_size=64, optimizer="adamw", weight_decay=0.1))
    assert math.isfinite(decayed.record.best_val_loss)


def test_kept_epochs_come_from_different_blocks():
    """With keep_spacing the kept checkpoints differ: one per block of epochs, the best of each block.
    A validation that improves every epoch (a decaying schedule's tail) keeps each block's last epoch
    instead of the last three epochs."""
    losses = iter([10.0 - 0.5 * epoch for epoch in range(12)])
    trained = fit(TrainConfig(epochs=12, batch_size=64, keep_best=3, keep_spacing=4),
                  check=lambda module, data: next(losses))
    assert trained.record.kept_epochs == [12, 8, 4]
    bumpy = iter([5.0, 1.0, 4.0, 3.0, 2.0, 6.0, 0.5, 7.0])
    trained = fit(TrainConfig(epochs=8, batch_size=64, keep_best=2, keep_spacing=3),
                  check=lambda module, data: next(bumpy))
    assert trained.record.kept_epochs == [7, 2]  # blocks 1-3 (best 2), 4-6 (best 5), 7-9 (best 7)
    with pytest.raises(ConfigError, match="keep_spacing"):
        TrainConfig(keep_spacing=0)


def test_chunked_sum_and_kept_log_prob_do_not_depend_on_the_chunk():
    """The chunked helpers give the whole-array answer for any chunk size (the last chunk short)."""
    from adbench.models.training import chunked_sum, kept_log_prob

    x = torch.linspace(-2.0, 2.0, 101)
    w = torch.arange(101.0)
    for chunk in (1, 7, 100, 1000):
        assert math.isclose(chunked_sum(lambda a, b: a * b, (x, w), chunk), float((x * w).double().sum()), rel_tol=1e-9)
    module = torch.nn.Linear(1, 1)
    states = [{"weight": torch.tensor([[s]]), "bias": torch.tensor([0.0])} for s in (1.0, -1.0)]
    expected = torch.logsumexp(torch.stack([x, -x]).double(), dim=0) - math.log(2)
    for chunk in (3, 200):
        got = kept_log_prob(module, states, lambda s: module(x[s, None])[:, 0], len(x), chunk, torch.device("cpu"))
        assert np.allclose(got, expected.numpy())


# --------------------------------------------------------------------------- resuming an interrupted training
class Interrupted(Exception):
    """Stands in for a killed process: raised from inside the loss, mid-epoch."""


def noisy_mse(module, batch):
    """The loss draws from the global torch RNG, as flow matching's time and noise draws do."""
    x, y = batch
    return (module(x) - y - 0.05 * torch.randn_like(y)).pow(2).mean()


def interrupting(after_steps: int):
    calls = {"n": 0}

    def loss(module, batch):
        calls["n"] += 1
        if calls["n"] > after_steps:
            raise Interrupted
        return noisy_mse(module, batch)
    return loss, calls


@pytest.mark.parametrize("config", [
    TrainConfig(epochs=6, batch_size=128, lr=3e-2, keep_best=3, schedule="cosine", ema_decay=0.9),
    TrainConfig(epochs=6, batch_size=128, lr=3e-2, keep_best=2, schedule="plateau", optimizer="adam"),
    TrainConfig(epochs=6, batch_size=128, lr=3e-2, keep_best=2, schedule="onecycle"),
], ids=["cosine-ema", "plateau", "onecycle"])
def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch, config):
    """Killed in the middle of epoch 4 (progress saved after every epoch here), the training run again
    in the same task folder goes on after epoch 3 and ends with the weights, kept epochs and losses of
    an uninterrupted run: optimiser, schedule, EMA, batch order and the loss's RNG draws all restored."""
    from adbench.models import resume

    monkeypatch.setattr("adbench.models.training.SAVE_EVERY_S", 0.0)
    whole = fit(config, loss=noisy_mse)
    steps = steps_per_epoch(1600, config)
    loss, _ = interrupting(after_steps=3 * steps + 5)
    with resume.resumable(tmp_path), pytest.raises(Interrupted):
        fit(config, loss=loss)
    assert [p.name for p in tmp_path.iterdir()] == ["01-toy.pt"]
    counted, calls = interrupting(after_steps=10**9)
    with resume.resumable(tmp_path):
        again = fit(config, loss=counted)
        assert resume.earlier_seconds() > 0
    assert calls["n"] == (config.epochs - 3) * steps  # epochs 4-6 only
    assert again.record.val_losses == whole.record.val_losses
    assert again.record.train_losses == whole.record.train_losses
    assert again.record.kept_epochs == whole.record.kept_epochs
    for a, b in zip(again.states, whole.states, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)

    # Finished now: run once more, it is read back without a single training step.
    untouched, calls = interrupting(after_steps=0)
    with resume.resumable(tmp_path):
        read_back = fit(config, loss=untouched)
    assert calls["n"] == 0 and read_back.record.val_losses == whole.record.val_losses
    assert torch.equal(read_back.module.weight, whole.module.weight)


def test_each_training_of_a_task_has_its_own_progress_and_a_foreign_one_is_ignored(tmp_path):
    """Two trainings in one task save to files numbered in order; a file another training saved (other
    configuration) is not taken over; without a scope nothing is written."""
    from adbench.models import resume

    config = TrainConfig(epochs=2, batch_size=256)
    with resume.resumable(tmp_path):
        fit(config)
        fit(config, seed=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-toy.pt", "02-toy.pt"]
    other = TrainConfig(epochs=3, batch_size=256)
    with resume.resumable(tmp_path):
        trained = fit(other)
    assert trained.record.epochs_run == 3 and trained.record.val_losses == fit(other).record.val_losses
    resume.discard(tmp_path)
    assert not tmp_path.exists()
    fit(config)
    assert not tmp_path.exists()


def test_a_setting_added_later_keeps_the_resume_fingerprint_at_its_default():
    """Saved progress is matched by its fingerprint: a setting added later (``min_steps``) does not
    change it while at its default, so an interrupted training still resumes after the setting
    appears; any setting that changes the training, that one set included, does."""
    from adbench.models.resume import fingerprint

    module, tensors = torch.nn.Linear(2, 1), (torch.zeros(8, 2),)
    base = TrainConfig(epochs=2, batch_size=256)
    text = fingerprint(module, tensors, base, 0, "toy")
    assert "min_steps" not in text and "'epochs': 2" in text
    assert fingerprint(module, tensors, TrainConfig(epochs=2, batch_size=256, min_steps=None), 0, "toy") == text
    for changed in (TrainConfig(epochs=2, batch_size=256, min_steps=500), TrainConfig(epochs=3, batch_size=256)):
        assert fingerprint(module, tensors, changed, 0, "toy") != text


def test_a_save_fingerprinted_the_earlier_ways_is_taken_over(tmp_path, monkeypatch):
    """Progress saved by earlier adbench is still resumed: without the data's values in the fingerprint
    (before 2026-11-25), and before that with the whole ``repr`` of the configuration; a save of
    another configuration is not."""
    import re

    from adbench.models import resume

    monkeypatch.setattr("adbench.models.training.SAVE_EVERY_S", 0.0)
    config = TrainConfig(epochs=4, batch_size=128, lr=3e-2, keep_best=2)
    steps = steps_per_epoch(1600, config)
    loss, _ = interrupting(after_steps=2 * steps + 3)
    with resume.resumable(tmp_path), pytest.raises(Interrupted):
        fit(config, loss=loss)
    path = tmp_path / "01-toy.pt"
    saved = torch.load(path, weights_only=True)
    new = saved["fingerprint"]
    sizes_only = re.sub(r"\|data [0-9a-f]{16}", "", new)
    whole_repr = sizes_only.replace(repr(hashed_settings(config)), repr(config))
    assert len({new, sizes_only, whole_repr}) == 3 and "min_steps=None" in whole_repr
    for old in (sizes_only, whole_repr):
        torch.save({**saved, "fingerprint": old}, path)
        counted, calls = interrupting(after_steps=10**9)
        with resume.resumable(tmp_path):
            fit(config, loss=counted)
        assert calls["n"] == (config.epochs - 2) * steps  # resumed after epoch 2
    torch.save({**saved, "fingerprint": whole_repr.replace("epochs=4", "epochs=5")}, path)
    counted, calls = interrupting(after_steps=10**9)
    with resume.resumable(tmp_path):
        fit(config, loss=counted)
    assert calls["n"] == config.epochs * steps  # another training's save: from the start


def test_progress_made_on_other_events_of_the_same_sizes_is_not_taken_over(tmp_path):
    """A finished training is read back only for the same data values: the same sizes with one value
    changed (a replaced data file, another split) train from the start."""
    from adbench.models import resume

    config = TrainConfig(epochs=2, batch_size=256)
    with resume.resumable(tmp_path):
        fit(config)
    (x, y), val = regression()
    x = x.clone()
    x[0, 0] += 1.0
    for train, steps in ((regression()[0], 0), ((x, y), config.epochs * steps_per_epoch(1600, config))):
        counted, calls = interrupting(after_steps=10**9)
        with resume.resumable(tmp_path):
            train_module(lambda: torch.nn.Linear(3, 1), train, val, counted, validate, config, seed=0,
                         device="cpu", label="toy")
        assert calls["n"] == steps  # the same values: read back; one value changed: trained afresh


def test_a_folder_that_cannot_be_written_costs_only_the_resumption(tmp_path, caplog):
    """Saving into a path under a file (as on a worker that cannot see the output folder) warns and the
    training goes on to the result it has without a scope; a damaged save is ignored, not a crash."""
    from adbench.models import resume

    config = TrainConfig(epochs=2, batch_size=256)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with resume.resumable(blocker / "task"):
        trained = fit(config)
    assert trained.record.val_losses == fit(config).record.val_losses
    assert "cannot save" in caplog.text
    folder = tmp_path / "task"
    folder.mkdir()
    (folder / "01-toy.pt").write_bytes(b"\x00garbage")
    with resume.resumable(folder):
        again = fit(config)
    assert again.record.val_losses == trained.record.val_losses and "unreadable" in caplog.text


def test_a_shareable_training_finished_by_another_task_is_read_back(tmp_path):
    """Two tasks of a run that train the same module on the same data with the same key: the second
    reads the first's finished training from the run's shared folder (no step, the same weights, its
    seconds counted as earlier seconds); another key, or none, trains afresh."""
    from adbench.models import resume

    config = TrainConfig(epochs=2, batch_size=256)
    train, val = regression()
    shared = tmp_path / "shared"

    def task(folder: str, key) -> tuple:
        counted, calls = interrupting(after_steps=10**9)
        with resume.resumable(tmp_path / folder, shared):
            trained = train_module(lambda: torch.nn.Linear(3, 1), train, val, counted, validate, config, seed=0,
                                   device="cpu", label="toy", share_key=key)
            return trained, calls["n"], resume.earlier_seconds(), resume.trainings_from_other_tasks()

    first, steps, earlier, taken = task("a", ("linear", 1))
    assert steps == config.epochs * steps_per_epoch(1600, config) and earlier == 0 and taken == 0
    (saved,) = shared.glob("toy-*.pt")
    second, steps, earlier, taken = task("b", ("linear", 1))
    assert (steps, taken) == (0, 1) and earlier == torch.load(saved, weights_only=True)["seconds"] > 0
    assert torch.equal(second.module.weight, first.module.weight)
    assert second.record.val_losses == first.record.val_losses
    for folder, key in (("c", ("linear", 2)), ("d", None)):
        _, steps, earlier, taken = task(folder, key)
        assert steps == config.epochs * steps_per_epoch(1600, config) and taken == 0, key
