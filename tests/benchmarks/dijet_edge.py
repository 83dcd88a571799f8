"""How far delta_R's mass dependence is the kinematic edge of the trigger.

Not a unit test. For each dataset it finds (``synthetic`` always; ``lhco-100k`` and ``lhcolike`` when
``../shared/data`` has them), the background's delta_R quantiles in bins of mjj, raw and divided by the
edge ``R_max(mjj)`` of ``adbench.mass_trends.DijetEdgeTrend`` (1.2 TeV trigger), the shares of events
above the edge and above pi, and how far each quantile moves (max - min) across the bins from ``--spread-from`` on::

    .venv/bin/python tests/benchmarks/dijet_edge.py --output reports/dijet-edge-cpu.json

Prints one JSON line per dataset and feature version: ``delta_R``; ``delta_R / R_max``; the same times
R_max at the reference mass (``--reference``, to read its drift in delta_R's units); and delta_R with only
its part above pi stretched to the reference edge, ``pi + (delta_R - pi) (R_max(ref) - pi) / (R_max(m) - pi)``
(a candidate that keeps the back-to-back peak at pi in place); and the smooth form of that stretch that
adbench implements (``DijetStretchTrend``, mass trend kind ``dijet-stretch``, its reference mass set to
``--reference``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

LEVELS = (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DATASETS = {"synthetic": None, "lhco-100k": DATA / "lhco-100k", "lhcolike": DATA / "lhcolike"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--bins", default="1.5,1.8,2.1,2.4,2.7,2.9,3.1,3.3,3.5,3.7,3.9,4.1",
                        help="mjj bin edges, TeV")
    parser.add_argument("--spread-from", type=float, default=2.9, help="lowest bin edge of the spread, TeV")
    parser.add_argument("--reference", type=float, default=3.5, help="reference mass, TeV")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the rows")
    return parser.parse_args(argv)


def quantile_rows(values: np.ndarray, bins: list[np.ndarray], spread_over: np.ndarray) -> dict[str, list]:
    """(n,) values and the (n,) masks of the mass bins -> the quantiles at ``LEVELS`` per bin (bins,
    levels) and their spread over the bins ``spread_over`` (a (bins,) mask) selects (levels,)."""
    table = np.array([np.quantile(values[inside], LEVELS) for inside in bins])
    spread = np.ptp(table[spread_over], axis=0)
    return {"quantiles": table.round(4).tolist(), "spread": spread.round(4).tolist()}


def smooth_stretch(delta_r: np.ndarray, m: np.ndarray, reference: float) -> np.ndarray:
    """(n,) delta_R at masses (n,) -> (n,) ``DijetStretchTrend``'s values with its reference at ``reference``."""
    from adbench.mass_trends import DijetStretchTrend

    trend = DijetStretchTrend((0,))
    trend.reference_mass_ = reference
    return trend.transform(delta_r[:, None], m)[:, 0]


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    from adbench.data.cards import load_dataset
    from adbench.mass_trends import DijetEdgeTrend

    edges = np.array([float(v) for v in args.bins.split(",")])
    edge = DijetEdgeTrend((0,))
    spread_over = edges[:-1] >= args.spread_from - 1e-9
    rows = []
    for name in args.datasets.split(","):
        directory = DATASETS.get(name)
        if directory is not None and not directory.is_dir():
            print(f"# {name}: {directory} is absent, skipped")
            continue
        events = load_dataset(name, data_dir=directory).events
        background = events.label == 0
        m = events.m[background]
        delta_r = events.x[background, list(events.features).index("delta_R")].astype(np.float64)
        bins = [(m >= low) & (m < high) for low, high in zip(edges[:-1], edges[1:], strict=True)]
        empty = [f"{low:g}-{high:g}" for low, high, inside in zip(edges[:-1], edges[1:], bins, strict=True)
                 if not inside.any()]
        if empty:
            raise SystemExit(f"dijet_edge.py: {name} has no background events in the mjj bins {', '.join(empty)} TeV")
        r_max = edge.edge(m)
        ratio = delta_r / r_max
        above = [round(float(np.mean(ratio[inside] > 1)), 4) for inside in bins]
        above_pi = [round(float(np.mean(delta_r[inside] > np.pi)), 4) for inside in bins]
        reference = float(edge.edge(np.array([args.reference]))[0])
        stretch = (reference - np.pi) / (r_max - np.pi)
        versions = {"delta_R": delta_r, "delta_R / R_max": ratio,
                    f"delta_R / R_max x R_max({args.reference:g})": ratio * reference,
                    "delta_R stretched above pi":
                        np.where(delta_r > np.pi, np.pi + (delta_r - np.pi) * stretch, delta_r),
                    "delta_R stretched above pi, smooth (dijet-stretch)": smooth_stretch(delta_r, m, args.reference)}
        for feature, values in versions.items():
            row = {"dataset": name, "feature": feature, "levels": list(LEVELS), "mjj_bins": edges.tolist(),
                   "pt_min": edge.pt_min, "spread_from": args.spread_from, "share_above_edge": above,
                   "share_above_pi": above_pi,
                   **quantile_rows(values, bins, spread_over)}
            print(json.dumps(row))
            rows.append(row)
    if args.output is not None:
        args.output.write_text(json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
