"""Reader for the LHC Olympics 2020 features files (pandas "fixed" HDF5 layout, read with h5py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adbench.data.events import Events
from adbench.data.features import ALL_FEATURES, LHCO_COLUMNS, derive_features
from adbench.errors import DataError


def read_lhco_columns(path: str | Path, key: str = "df") -> dict[str, np.ndarray]:
    """The raw columns of an LHCO features file by name.

    Reads ``<key>/block0_values`` (an (n, n_columns) float array) and the column names from
    ``<key>/axis0``; accepts float32 and float64. Raises ``DataError`` naming the file when it is
    missing, not HDF5, or lacks the expected layout or columns.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with h5py.File(path, "r") as handle:
            if f"{key}/block0_values" not in handle or f"{key}/axis0" not in handle:
                raise DataError(
                    f"{path}: not in the LHCO layout (expected datasets '{key}/block0_values' "
                    f"and '{key}/axis0' of a pandas 'fixed' HDF5 file)"
                )
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in handle[f"{key}/axis0"][:]]
            values = handle[f"{key}/block0_values"][:]
    except DataError:
        raise
    except (OSError, KeyError, ValueError) as error:
        raise DataError(f"{path}: cannot be read as HDF5 ({error})") from None
    if values.ndim != 2 or values.shape[1] != len(names):
        raise DataError(
            f"{path}: block0_values has shape {values.shape} but axis0 names {len(names)} columns"
        )
    missing = [name for name in LHCO_COLUMNS if name not in names]
    if missing:
        raise DataError(f"{path}: missing columns {missing} (has {names})")
    return {name: values[:, i] for i, name in enumerate(names)}


def load_lhco_events(path: str | Path, *, default_label: int | None = None) -> Events:
    """Events with all derived features from an LHCO features file.

    Args:
        path: the features file (official R&D file, extra-QCD file, or the same layout).
        default_label: label for files without a ``label`` column (the extra-QCD file is all
            background: 0). Without it, a missing ``label`` column is an error.

    Raises:
        DataError: naming the file and the column when values are NaN or infinite, labels are not
            0/1, or the layout is wrong.
    """
    columns = read_lhco_columns(path)
    for name in LHCO_COLUMNS:
        bad = ~np.isfinite(columns[name])
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: column '{name}' has {int(bad.sum())} NaN/inf values (first at row {first})"
            )
    if "label" in columns:
        label = columns["label"]
        if not np.isin(label, (0, 1)).all():
            bad_values = np.unique(label[~np.isin(label, (0, 1))])[:5]
            raise DataError(f"{path}: column 'label' must be 0 or 1, found {bad_values.tolist()}")
    elif default_label is not None:
        label = np.full(len(columns[LHCO_COLUMNS[0]]), default_label)
    else:
        raise DataError(f"{path}: no 'label' column")
    mjj, x = derive_features(columns)
    bad = ~np.isfinite(x).all(axis=1) | ~np.isfinite(mjj)
    if bad.any():
        raise DataError(f"{path}: {int(bad.sum())} events give non-finite derived features")
    return Events(mjj, x, label.astype(np.int8), ALL_FEATURES)
