"""Published figures to print beside adbench's measurements (from ../shared/REFERENCE.md).

Each entry names its source; values are what the papers report, not something adbench measured.
"""

from __future__ import annotations

#: method -> (generative model, published time, source)
PUBLISHED_TIMING: dict[str, tuple[str, str, str]] = {
    "cathode": ("normalizing flows", "3 h per SR", "SIGMA paper, arXiv:2410.20537"),
    "anode": ("normalizing flows", "3 h per SR", "SIGMA paper, arXiv:2410.20537"),
    "radot": ("optimal transport", "10 min per SR", "SIGMA paper, arXiv:2410.20537"),
    "vcr": ("flow matching", "30 min per SR", "SIGMA paper, arXiv:2410.20537"),
    "sigma-linear": ("flow matching", "30 min (training) + 30 s per SR", "SIGMA paper, arXiv:2410.20537"),
    "sigma-context": ("flow matching", "30 min (training) + 30 s per SR", "SIGMA paper, arXiv:2410.20537"),
}

#: (method, metric, n_sig) -> (value, source). Metrics: "sic_1e3", "max_sic".
PUBLISHED_PERFORMANCE: dict[tuple[str, str, int], tuple[float, str]] = {
    ("radot", "sic_1e3", 3000): (11.9, "RAD-OT, arXiv:2407.19818 (BDT, 5 features)"),
    ("radot", "sic_1e3", 1000): (3.8, "RAD-OT, arXiv:2407.19818 (BDT, 5 features)"),
    ("supervised", "sic_1e3", 3000): (13.2, "BDT, 5 features, LHCO"),
    ("supervised", "sic_1e3", 1000): (11.5, "BDT, 5 features, LHCO"),
    ("idealized", "sic_1e3", 3000): (12.1, "BDT, 5 features, LHCO"),
    ("idealized", "sic_1e3", 1000): (10.7, "BDT, 5 features, LHCO"),
    ("supervised", "max_sic", 1000): (17.0, "CATHODE, arXiv:2109.00546 (MLP, 4 features, approx.)"),
    ("idealized", "max_sic", 1000): (14.5, "CATHODE, arXiv:2109.00546 (MLP, 4 features, 14-15)"),
    ("cathode", "max_sic", 1000): (14.0, "CATHODE, arXiv:2109.00546 (MLP, 4 features, approx.)"),
    ("anode", "max_sic", 1000): (6.5, "CATHODE, arXiv:2109.00546 (MLP, 4 features, approx.)"),
}
