"""Shared fixtures: tiny synthetic data, an LHCO-layout file writer, the shared-data paths.

``ADBENCH_TEST_DATA_SEED=K`` shifts the generator seed of every synthetic sample the tests draw by K
(default 0), so that the whole suite can be rerun on other data: no verdict may hang on one sample.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LHCO_100K = SHARED / "lhco-100k" / "events_anomalydetection_first100k.features.h5"
LHCO_SR = SHARED / "lhco-sr"

requires_lhco_100k = pytest.mark.skipif(not LHCO_100K.is_file(), reason="../shared/data/lhco-100k is absent")
requires_lhco_sr = pytest.mark.skipif(
    not (LHCO_SR / "innerdata_test.npy").is_file(), reason="../shared/data/lhco-sr is absent"
)
DATA_SEED_OFFSET = int(os.environ.get("ADBENCH_TEST_DATA_SEED", "0"))


@pytest.fixture()
def one_torch_thread():
    """Runs a test with one torch thread (its numbers then do not depend on the core count)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def data_seed(seed: int) -> int:
    """The generator seed a test uses for its synthetic sample number ``seed``."""
    return seed + DATA_SEED_OFFSET


@pytest.fixture(scope="session")
def small_dataset():
    """Synthetic: 150k background, 15k signal pool, 150k held-out background (full mass range)."""
    from adbench.data.synthetic import synthetic_dataset

    return synthetic_dataset(n_background=150_000, n_signal=15_000, n_reference=150_000, seed=data_seed(1))


def lhco_columns(n: int, rng: np.random.Generator, mjj_range=(2.0, 6.0)) -> np.ndarray:
    """(n, 15) raw LHCO columns (GeV) for back-to-back jets with mjj uniform in ``mjj_range`` TeV."""
    pt = rng.uniform(1200, 1800, n)
    eta1 = rng.uniform(-1, 1, n)
    phi1 = rng.uniform(-np.pi, np.pi, n)
    m1, m2 = rng.uniform(20, 500, n), rng.uniform(20, 500, n)
    # choose eta2 so that mjj lands in the requested range: mjj^2 ~ 2 pt^2 (cosh(d_eta) + 1) for d_phi = pi
    target = rng.uniform(*mjj_range, n) * 1000
    d_eta = np.arccosh(np.clip(target**2 / (2 * pt**2) - 1, 1, None))
    eta2 = eta1 - d_eta
    phi2 = phi1 + np.pi
    cols = []
    for eta, phi, m in ((eta1, phi1, m1), (eta2, phi2, m2)):
        tau1 = rng.uniform(0.1, 0.9, n)
        tau2 = tau1 * rng.uniform(0.2, 0.95, n)
        tau3 = tau2 * rng.uniform(0.3, 0.95, n)
        cols += [pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), m, tau1, tau2, tau3]
    label = (rng.random(n) < 0.1).astype(float)
    return np.column_stack(cols + [label])


def write_lhco_file(path: Path, values: np.ndarray, columns: list[str] | None = None, dtype=np.float64) -> Path:
    """Write ``values`` in the pandas 'fixed' HDF5 layout of the official LHCO files."""
    import h5py

    from adbench.data.features import LHCO_COLUMNS

    columns = list(LHCO_COLUMNS) + ["label"] if columns is None else columns
    with h5py.File(path, "w") as handle:
        group = handle.create_group("df")
        group.attrs["pandas_type"] = b"frame"
        group.create_dataset("axis0", data=np.array([c.encode() for c in columns]))
        group.create_dataset("axis1", data=np.arange(len(values)))
        group.create_dataset("block0_items", data=np.array([c.encode() for c in columns]))
        group.create_dataset("block0_values", data=np.asarray(values, dtype=dtype))
    return path


def fidelity_sigmas(sample: np.ndarray, reference: np.ndarray, n_sigma: float, what: str, seed: int = 0) -> float:
    """How many standard deviations of the calibrated null (``adbench.evaluate.auc_null``) the
    two-sample AUC of ``sample`` versus ``reference`` lies above 0.5; prints it with the limit
    ``n_sigma`` (and appends the line to ``$ADBENCH_FIDELITY_LOG`` when set)."""
    from adbench.evaluate import two_sample_auc

    return stored_auc_sigmas(two_sample_auc(sample, reference, seed=seed), len(sample), len(reference), n_sigma, what)


def assert_faithful(sample: np.ndarray, reference: np.ndarray, n_sigma: float, what: str, seed: int = 0) -> None:
    """The sample passes for the reference: its AUC lies less than ``n_sigma`` null deviations above 0.5."""
    sigmas = fidelity_sigmas(sample, reference, n_sigma, what, seed)
    assert sigmas < n_sigma, f"{what}: {sigmas:.1f} sigma above the null, limit {n_sigma}"


def assert_distinguishable(sample: np.ndarray, reference: np.ndarray, n_sigma: float, what: str, seed: int = 0) -> None:
    """A negative control: the sample must fail the same check (its AUC above ``n_sigma``)."""
    sigmas = fidelity_sigmas(sample, reference, n_sigma, what, seed)
    assert sigmas > n_sigma, f"{what}: only {sigmas:.1f} sigma above the null, expected more than {n_sigma}"


def stored_auc_sigmas(auc: float, n_a: int, n_b: int, n_sigma: float, what: str) -> float:
    """Like ``fidelity_sigmas`` for an AUC already computed (a stored record's) on samples of sizes
    ``n_a`` and ``n_b``; prints the distance to the limit ``n_sigma``."""
    from adbench.evaluate import auc_null

    null = auc_null(n_a, n_b)
    line = f"{what}: {null.describe(auc, n_sigma)}"
    print(line)
    if os.environ.get("ADBENCH_FIDELITY_LOG"):
        with open(os.environ["ADBENCH_FIDELITY_LOG"], "a") as handle:
            handle.write(f"data seed +{DATA_SEED_OFFSET}, OMP {os.environ.get('OMP_NUM_THREADS', '-')}: {line}\n")
    return null.sigmas(auc)


def randomised(module, seed: int = 0):
    """A torch module with every parameter drawn at random (zuko zero-initialises its last layers, so a
    new flow is close to the identity), for tests of exact properties that must hold for any weights."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return module
