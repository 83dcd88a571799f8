"""RAD-OT (arXiv:2407.19818): a template without a generative model.

Events of the lower sideband SB1 = [low - w, low) and the upper sideband SB2 = [high, high + w) are
paired by optimal transport (squared Euclidean cost on quantile-transformed features) and each pair
is moved along its straight line to a target SR mass, ``x = x1 + (m - m1) / (m2 - m1) (x2 - x1)``.

The two sidebands hold different numbers of events; ``balance`` makes every transport problem square
with uniform weights (so the exact plan is a permutation): ``upsample`` repeats the smaller side
evenly up to the larger one, ``subsample`` drops the surplus of the larger. Solvers: ``emd`` (exact,
POT's network simplex on CPU threads) and ``sinkhorn`` (entropic, on torch tensors on ``device``,
partners drawn from the plan's rows). Measurements behind these choices: docs/radot.md.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from adbench.data.events import Events
from adbench.errors import ConfigError, MethodFailure
from adbench.methods.base import BackgroundModel, Truth, require
from adbench.methods.registry import register
from adbench.progress import progress
from adbench.windows import Window

log = logging.getLogger(__name__)

SOLVERS = ("emd", "sinkhorn")
BALANCES = ("upsample", "subsample")
SINKHORN_PAIRS = ("sample", "argmax")
MIN_SIDEBAND_EVENTS = 10


def interpolate(
    x1: np.ndarray, m1: np.ndarray, x2: np.ndarray, m2: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """Move each pair along its line to mass ``m``: ``x1 + (m - m1) / (m2 - m1) (x2 - x1)``.

    Written as ``(1 - t) x1 + t x2`` in float64, so it returns exactly ``x1`` at ``m = m1`` and
    exactly ``x2`` at ``m = m2``.

    Args:
        x1, x2: (n, d) features of the lower / upper partner.
        m1, m2: (n,) their masses, m1 < m2.
        m: (n,) target masses.

    Returns:
        (n, d) float32.
    """
    m1 = np.asarray(m1, dtype=np.float64)
    t = ((np.asarray(m, dtype=np.float64) - m1) / (np.asarray(m2, dtype=np.float64) - m1))[:, None]
    out = (1.0 - t) * np.asarray(x1, dtype=np.float64) + t * np.asarray(x2, dtype=np.float64)
    return out.astype(np.float32)


def balanced_draw(n_source: int, n_draw: int, rng: np.random.Generator) -> np.ndarray:
    """(n_draw,) indices into ``range(n_source)``, each used floor or ceil of n_draw / n_source
    times: whole shuffled copies plus a random remainder, in random order."""
    copies, remainder = divmod(n_draw, n_source)
    index = np.concatenate(
        [np.tile(np.arange(n_source), copies), rng.permutation(n_source)[:remainder]]
    )
    return rng.permutation(index) if copies else index


def emd_permutation(z1: np.ndarray, z2: np.ndarray, max_iter: int) -> tuple[np.ndarray, bool]:
    """Exact OT between two equal-size point sets with uniform weights.

    Args:
        z1, z2: (n, d) points (transformed features).

    Returns:
        (n,) ``perm`` with z1[i] paired to z2[perm[i]], and whether the solver converged.
    """
    import ot

    n = len(z1)
    if len(z2) != n:
        raise ValueError(f"emd_permutation needs equal sizes, got {n} and {len(z2)}")
    cost = ot.dist(z1.astype(np.float64), z2.astype(np.float64), metric="sqeuclidean")
    weights = np.full(n, 1.0 / n)
    plan, info = ot.emd(weights, weights, cost, numItermax=max_iter, log=True)
    perm = plan.argmax(axis=1)
    if len(np.unique(perm)) != n:
        raise MethodFailure("ot.emd returned a plan that is not a permutation")
    return perm, info["result_code"] == 1


@dataclass(frozen=True)
class RadOTSettings:
    """RAD-OT's settings (the ``[profile]`` table of ``methods/radot.toml``).

    Attributes:
        sideband_width: width of each sideband in TeV (SB1 = [low - w, low), SB2 = [high, high + w)).
        solver: ``emd`` (exact, CPU) or ``sinkhorn`` (entropic, on ``device``).
        batch_size: events per side in one transport problem.
        balance: ``upsample`` (n_pairs = larger sideband) or ``subsample`` (smaller sideband).
        quantile_output: output distribution of the QuantileTransformer used for the cost
            (``normal`` or ``uniform``).
        n_quantiles: quantiles of the transformer (capped at the number of sideband events).
        batch_order: ``random`` batches (the paper's), or ``projection`` (an adbench addition): both
            sides sorted along the leading principal axis of the transformed features and cut into
            rank blocks, so each batch holds neighbouring events.
        emd_max_iter: network-simplex iteration limit per batch.
        sinkhorn_reg: entropic regularisation, as a fraction of the batch's mean cost.
        sinkhorn_max_iter, sinkhorn_tol: Sinkhorn iteration limit and marginal-error tolerance.
        sinkhorn_pairs: ``sample`` a partner from each plan row, or take its ``argmax``.
        n_jobs: threads for the ``emd`` batches (-1: every available core).
    """

    sideband_width: float = 0.2
    solver: str = "emd"
    batch_size: int = 3000
    balance: str = "upsample"
    quantile_output: str = "normal"
    n_quantiles: int = 1000
    batch_order: str = "random"
    emd_max_iter: int = 10_000_000
    sinkhorn_reg: float = 0.01
    sinkhorn_max_iter: int = 1000
    sinkhorn_tol: float = 1e-4
    sinkhorn_pairs: str = "sample"
    n_jobs: int = 1

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ConfigError(f"radot: unknown solver {self.solver!r}; choose one of {', '.join(SOLVERS)}")
        if self.balance not in BALANCES:
            raise ConfigError(f"radot: unknown balance {self.balance!r}; choose one of {', '.join(BALANCES)}")
        if self.sinkhorn_pairs not in SINKHORN_PAIRS:
            raise ConfigError(
                f"radot: unknown sinkhorn_pairs {self.sinkhorn_pairs!r}; choose one of {', '.join(SINKHORN_PAIRS)}"
            )
        if self.batch_order not in ("random", "projection"):
            raise ConfigError(f"radot: batch_order must be random or projection, got {self.batch_order!r}")
        if self.quantile_output not in ("normal", "uniform"):
            raise ConfigError(f"radot: quantile_output must be normal or uniform, got {self.quantile_output!r}")
        if int(self.batch_size) < 1 or not self.sideband_width > 0 or not self.sinkhorn_reg > 0:
            raise ConfigError(
                "radot: batch_size, sideband_width and sinkhorn_reg must be positive, got "
                f"{self.batch_size}, {self.sideband_width}, {self.sinkhorn_reg}"
            )


@register
class RadOT(BackgroundModel):
    """RAD-OT: sideband events paired by optimal transport and interpolated to SR masses."""

    name = "radot"
    family = "optimal transport"
    per_window = True

    Settings = RadOTSettings

    def check_ready(self) -> None:
        solver = self.config.solver
        require("ot", "pip install 'adbench[ot]' (POT)")
        if solver == "sinkhorn":
            require("torch", "pip install 'adbench[torch]' (the sinkhorn solver runs on torch)")

    # ------------------------------------------------------------------ fit
    def fit(self, events: Events, window: Window | None, truth: Truth | None = None) -> RadOT:
        """Pair the events of the two sidebands of ``window`` by optimal transport."""
        c = self.config
        if window is None:
            raise MethodFailure("radot is fitted per signal region; the harness passed no window")
        width = float(c.sideband_width)
        lower = events.select(window.lower_sideband(events.m, width))
        upper = events.select(window.upper_sideband(events.m, width))
        if min(len(lower), len(upper)) < MIN_SIDEBAND_EVENTS:
            raise MethodFailure(
                f"{window}: radot needs at least {MIN_SIDEBAND_EVENTS} events in each sideband, got "
                f"{len(lower)} in {window.low - width:g}-{window.low:g} TeV and {len(upper)} in "
                f"{window.high:g}-{window.high + width:g} TeV"
            )
        from sklearn.preprocessing import QuantileTransformer

        rng = np.random.default_rng(self.seed)
        both = np.concatenate([lower.x, upper.x])
        transformer = QuantileTransformer(
            n_quantiles=min(int(c.n_quantiles), len(both)),
            output_distribution=c.quantile_output,
            subsample=len(both),
            random_state=self.seed,
        ).fit(both)
        z_lower = transformer.transform(lower.x)
        z_upper = transformer.transform(upper.x)

        n_pairs = max(len(lower), len(upper)) if c.balance == "upsample" else min(len(lower), len(upper))
        take_lower = balanced_draw(len(lower), n_pairs, rng)
        take_upper = balanced_draw(len(upper), n_pairs, rng)
        if c.batch_order == "projection":
            # rank blocks along the leading principal axis: each batch holds neighbouring events of
            # both sides, so the batch-wise plans stay closer to the global one
            centred = np.concatenate([z_lower, z_upper])
            centred -= centred.mean(axis=0)
            axis = np.linalg.eigh(centred.T @ centred)[1][:, -1]
            take_lower = take_lower[np.argsort(z_lower[take_lower] @ axis, kind="stable")]
            take_upper = take_upper[np.argsort(z_upper[take_upper] @ axis, kind="stable")]
        n_batches = -(-n_pairs // int(c.batch_size))
        batches = np.array_split(np.arange(n_pairs), n_batches)
        jobs = [(z_lower[take_lower[b]], z_upper[take_upper[b]]) for b in batches]
        if c.solver == "emd":
            perms = self._solve_emd(jobs)
        else:
            perms = self._solve_sinkhorn(jobs)
        partner = np.concatenate([take_upper[b][perm] for b, perm in zip(batches, perms, strict=True)])

        self.m_lower_, self.x_lower_ = lower.m[take_lower], lower.x[take_lower]
        self.m_upper_, self.x_upper_ = upper.m[partner], upper.x[partner]
        self.n_lower_sideband_, self.n_upper_sideband_ = len(lower), len(upper)
        self.n_batches_ = n_batches
        self.transformer_ = transformer
        return self

    def _threads(self) -> int:
        n_jobs = int(self.config.n_jobs)
        if n_jobs > 0:
            return n_jobs
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    def _solve_emd(self, jobs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Exact OT per batch; (n_b,) permutations."""
        try:
            import ot  # noqa: F401
        except ImportError:
            raise ConfigError("radot needs POT: pip install 'adbench[ot]'") from None
        max_iter = int(self.config.emd_max_iter)
        results = []
        with ThreadPoolExecutor(max_workers=min(self._threads(), len(jobs))) as pool, \
                progress("OT batches", len(jobs)) as tick:
            for result in pool.map(lambda job: emd_permutation(*job, max_iter), jobs):
                results.append(result)
                tick()
        self.not_converged_ = sum(not ok for _, ok in results)
        if self.not_converged_:
            log.warning(
                "radot: ot.emd hit its iteration limit (%d) in %d of %d batches; the pairing is "
                "feasible but not optimal there", max_iter, self.not_converged_, len(jobs)
            )
        return [perm for perm, _ in results]

    def _solve_sinkhorn(self, jobs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Entropic OT per batch on ``device`` with POT's torch backend; (n_b,) partner indices."""
        try:
            import ot
            import torch
        except ImportError:
            raise ConfigError("radot's sinkhorn solver needs POT and torch: pip install 'adbench[all]'") from None
        device = torch.device(self.device)
        generator = torch.Generator(device=device).manual_seed(int(self.seed))
        partners, iterations, unconverged = [], [], 0
        for z1, z2 in jobs:
            a_pts = torch.as_tensor(z1, dtype=torch.float32, device=device)
            b_pts = torch.as_tensor(z2, dtype=torch.float32, device=device)
            cost = ot.dist(a_pts, b_pts, metric="sqeuclidean")
            n = len(z1)
            weights = torch.full((n,), 1.0 / n, dtype=torch.float32, device=device)
            reg = float(self.config.sinkhorn_reg) * float(cost.mean())
            plan, info = ot.sinkhorn(
                weights, weights, cost, reg, method="sinkhorn_log", numItermax=int(self.config.sinkhorn_max_iter),
                stopThr=float(self.config.sinkhorn_tol), log=True, warn=False,
            )
            iterations.append(int(info["niter"]))
            unconverged += int(float(info["err"][-1]) > float(self.config.sinkhorn_tol)) if info["err"] else 0
            if self.config.sinkhorn_pairs == "argmax":
                partner = plan.argmax(dim=1)
            else:
                rows = plan.clamp_min(0)
                empty = rows.sum(dim=1) <= 0  # a row lost to underflow: fall back to its cheapest partner
                if bool(empty.any()):
                    rows[empty] = torch.nn.functional.one_hot(cost[empty].argmin(dim=1), n).to(rows.dtype)
                partner = torch.multinomial(rows, 1, generator=generator).squeeze(1)
            partners.append(partner.cpu().numpy())
        self.sinkhorn_iterations_ = max(iterations)
        self.not_converged_ = unconverged
        if unconverged:
            log.warning(
                "radot: Sinkhorn did not reach tol %g within %d iterations in %d of %d batches",
                self.config.sinkhorn_tol, self.config.sinkhorn_max_iter, unconverged, len(jobs),
            )
        return partners

    # --------------------------------------------------------------- sample
    def sample(self, masses: np.ndarray, window: Window) -> np.ndarray:
        """Template at ``masses``: each mass gets a pair (pairs used equally often) and the pair is
        interpolated to it.

        Args:
            masses: (n,) SR masses in TeV.

        Returns:
            (n, d) float32 features.
        """
        if not hasattr(self, "m_lower_"):
            raise MethodFailure("radot.sample called before fit")
        masses = np.asarray(masses, dtype=np.float64)
        rng = np.random.default_rng([int(self.seed), 1])
        pair = balanced_draw(len(self.m_lower_), len(masses), rng)
        self.n_template_ = len(masses)
        self.template_pairs_ = pair
        return interpolate(
            self.x_lower_[pair], self.m_lower_[pair], self.x_upper_[pair], self.m_upper_[pair], masses
        )

    def template_sources(self) -> np.ndarray | None:
        """The sideband pair behind each template event (each pair is used about
        ``len(masses) / n_pairs`` times)."""
        return getattr(self, "template_pairs_", None)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "solver": self.config.solver,
            "batch_size": int(self.config.batch_size),
            "balance": self.config.balance,
            "batch_order": self.config.batch_order,
            "sideband_width": float(self.config.sideband_width),
            "quantile_output": self.config.quantile_output,
        }
        if self.config.solver == "emd":
            out["solver_device"] = "cpu"
            out["n_jobs"] = self._threads()
        else:
            out.update(
                solver_device=str(self.device), sinkhorn_reg=float(self.config.sinkhorn_reg),
                sinkhorn_pairs=self.config.sinkhorn_pairs,
                sinkhorn_iterations=int(getattr(self, "sinkhorn_iterations_", 0)),
            )
        if hasattr(self, "m_lower_"):
            out.update(
                n_pairs=len(self.m_lower_),
                n_batches=int(self.n_batches_),
                n_lower_sideband=int(self.n_lower_sideband_),
                n_upper_sideband=int(self.n_upper_sideband_),
                batches_not_converged=int(self.not_converged_),
            )
        if hasattr(self, "n_template_") and hasattr(self, "m_lower_"):
            out["uses_per_pair"] = self.n_template_ / len(self.m_lower_)
        return out
