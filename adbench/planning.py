"""The scan as a task graph: each shared fit (a method trained once per dataset, N_sig and seed)
comes before the per-window tasks that use it; every other task stands alone.

A window task is one record: (fit, when the method is trained per window), template, classifier,
metrics. Its key is the record's key, so a rerun skips what is finished. The tasks are listed in
the order a single process runs them (seed, N_sig, method as listed, window), the order of the
records before the scan became a graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adbench.data.dataset import Dataset
from adbench.runconfig import MethodSpec, RunConfig, config_hash, make_model
from adbench.windows import Window


@dataclass(frozen=True, eq=False)
class FitTask:
    """A shared fit: trained once for every window of ``users``.

    Attributes:
        spec: the owner, the first listed method that needs this fit; the others adopt it
            (``share_fit_from``) and record the owner's name in ``shared_fit_from``.
        users: the names of the methods whose window tasks use it, the owner first.
        config_hash: the owner's config hash.
        index: the position in the plan.
    """

    key: str
    spec: MethodSpec
    n_sig: int
    seed: int
    config_hash: str
    index: int
    users: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.spec.name} fit, seed {self.seed}, N_sig {self.n_sig}"


@dataclass(frozen=True, eq=False)
class WindowTask:
    """One record: a method on one window for one (N_sig, seed).

    Attributes:
        fit: the key of the ``FitTask`` it waits for (methods trained once), else None.
        shared_from: the owner's name when the fit is another method's, else None.
        shares_trainings: another method of the run may repeat its trainings (``may_share_trainings``):
            it keeps its finished shareable trainings for the other tasks of its ``share_group`` and
            reads theirs back.
    """

    key: str
    record_key: tuple
    spec: MethodSpec
    window: Window
    n_sig: int
    seed: int
    config_hash: str
    index: int
    fit: str | None = None
    shared_from: str | None = None
    shares_trainings: bool = False

    @property
    def label(self) -> str:
        return f"seed {self.seed}, N_sig {self.n_sig}, {self.spec.name}"

    @property
    def share_group(self) -> str:
        """The tasks that may repeat one another's trainings: those of one window, N_sig and seed."""
        return f"{self.window.name}_{self.n_sig}_{self.seed}"

    def may_repeat_trainings_of(self, other: Task) -> bool:
        """Whether this task may train what ``other`` trains, in one share group: variants of one
        method (two R-ANODE profiles) or methods that declare the same shared training
        (``BackgroundModel.shares_trainings_with``: ANODE's and R-ANODE's background flow). Started
        after ``other``, it reads that training back instead of repeating it."""
        return (isinstance(other, WindowTask) and other.share_group == self.share_group
                and may_share_trainings(self.spec, other.spec))


def may_share_trainings(a: MethodSpec, b: MethodSpec) -> bool:
    """Whether tasks of ``a`` and ``b`` of one window, N_sig and seed may train the same thing:
    variants of one method, or methods that declare the same shared training
    (``BackgroundModel.shares_trainings_with``)."""
    if a.name == b.name:
        return True
    shared = a.cls.shares_trainings_with
    return bool(shared) and b.cls.shares_trainings_with == shared


Task = FitTask | WindowTask


@dataclass
class Plan:
    """The tasks still to run, in single-process order.

    Attributes:
        total: window tasks of the whole scan (those finished earlier included).
        done: window tasks finished earlier (not in ``tasks``).
        hashes: the config hash of each method.
    """

    tasks: list[Task]
    total: int
    done: int
    hashes: dict[MethodSpec, str]
    _users: dict[str, list[WindowTask]] | None = field(default=None, repr=False)

    @property
    def windows(self) -> list[WindowTask]:
        return [task for task in self.tasks if isinstance(task, WindowTask)]

    @property
    def fits(self) -> list[FitTask]:
        return [task for task in self.tasks if isinstance(task, FitTask)]

    def users_of(self, fit: FitTask) -> list[WindowTask]:
        """The window tasks that wait for ``fit``, in plan order."""
        if self._users is None:
            self._users = {}
            for task in self.windows:
                if task.fit is not None:
                    self._users.setdefault(task.fit, []).append(task)
        return self._users.get(fit.key, [])


def record_key(dataset: Dataset, window: Window, spec: MethodSpec, n_sig: int, seed: int, hashed: str) -> tuple:
    """The key of the record a window task writes (``adbench.results.KEY_FIELDS``)."""
    return (dataset.name, window.name, spec.name, n_sig, seed, hashed)


def make_plan(dataset: Dataset, config: RunConfig, finished: set[tuple] = frozenset()) -> Plan:
    """The pending tasks of ``config`` on ``dataset``; window tasks whose record key is in
    ``finished`` are skipped, and so is a shared fit that no pending window needs."""
    hashes = {spec: config_hash(dataset, spec, config) for spec in config.methods}
    sharing = {spec for spec in config.methods
               if any(may_share_trainings(spec, other) for other in config.methods if other is not spec)}
    tasks: list[Task] = []
    total = done = 0
    for seed in config.seeds:
        for n_sig in config.n_sigs:
            owners: dict[str, FitTask] = {}
            for spec in config.methods:
                hashed = hashes[spec]
                windows = []
                for window in config.windows:
                    total += 1
                    if record_key(dataset, window, spec, n_sig, seed, hashed) in finished:
                        done += 1
                    else:
                        windows.append(window)
                if not windows:
                    continue
                fit, shared_from = None, None
                if not spec.cls.per_window:
                    signature = make_model(spec, config.device, seed, config.classifier_for(spec)).fit_signature()
                    fit = owners.get(signature) if signature is not None else None
                    if fit is None:
                        key = "/".join(("fit", dataset.name, spec.name, str(n_sig), str(seed), hashed))
                        fit = FitTask(key, spec, n_sig, seed, hashed, len(tasks))
                        tasks.append(fit)
                        if signature is not None:
                            owners[signature] = fit
                    else:
                        shared_from = fit.spec.name
                    fit.users.append(spec.name)
                for window in windows:
                    rkey = record_key(dataset, window, spec, n_sig, seed, hashed)
                    tasks.append(WindowTask(
                        "/".join(str(part) for part in rkey), rkey, spec, window, n_sig, seed, hashed, len(tasks),
                        fit.key if fit else None, shared_from, spec in sharing,
                    ))
    return Plan(tasks, total, done, hashes)


def describe(task: Task, estimate: Any) -> dict[str, Any]:
    """One line of ``adbench plan``: the task, what it waits for and its cost estimate."""
    fit = isinstance(task, FitTask)
    line: dict[str, Any] = {
        "key": task.key, "kind": "fit" if fit else "window", "method": task.spec.name,
        "profile": task.spec.preset.profile, "window": None if fit else task.window.name, "n_sig": task.n_sig,
        "seed": task.seed, "depends_on": [task.fit] if not fit and task.fit else [],
    }
    if fit:
        line["used_by"] = list(task.users)
    else:
        line["shared_fit_from"] = task.shared_from
    line.update(cost_s=round(estimate.seconds, 1), cost_from=estimate.source)
    if getattr(estimate, "saved", 0.0):
        line["saved_s"] = round(estimate.saved, 1)  # training an earlier attempt saved, not costed again
    return line
