"""Published figures to compare with, like for like (sources: ../shared/REFERENCE.md).

Each entry says where it comes from and under which conditions it was measured (data, classifier,
features, hardware); the report sets it beside an adbench number only where those conditions match
(``adbench.report.comparison``). Values are what the papers report, not something adbench measured.
"""

from __future__ import annotations

from dataclasses import dataclass

#: QCD events of the LHCO R&D file in 3.3-3.7 TeV, and the share of the signal that falls there
#: (REFERENCE.md): the papers' S/B at a given N_sig.
LHCO_SR_BACKGROUND = 121_339
LHCO_SR_SIGNAL_FRACTION = 0.75

#: Datasets on which a published number means something: dataset -> what its events are.
COMPARABLE_DATASETS: dict[str, str] = {
    "lhco": "LHCO R&D (the papers' events)",
    "lhcolike": "Pythia look-alike, generator level",
}


@dataclass(frozen=True)
class PublishedValue:
    """A published sensitivity.

    Attributes:
        metric: ``max_sic`` or ``sic_1e3``.
        classifier: the classifier family (``BDT`` or ``MLP``); adbench's is a BDT ensemble.
        n_features: the number of input features (CATHODE's 4, or 5 with delta_R).
    """

    method: str
    metric: str
    n_sig: int
    value: float
    source: str
    classifier: str
    n_features: int
    approximate: bool = False

    @property
    def s_over_b(self) -> float:
        """The S/B in the SR of the papers' injection (about 75% of the signal in 3.3-3.7 TeV)."""
        return LHCO_SR_SIGNAL_FRACTION * self.n_sig / LHCO_SR_BACKGROUND


@dataclass(frozen=True)
class PublishedTiming:
    """A published wall-clock time (measured on GPUs)."""

    method: str
    family: str
    text: str
    source: str
    hardware: str = "GPU"


_SIGMA = "SIGMA paper, arXiv:2410.20537 (timing table)"
PUBLISHED_TIMING: dict[str, PublishedTiming] = {
    t.method: t for t in (
        PublishedTiming("cathode", "normalizing flows", "3 h per SR", _SIGMA),
        PublishedTiming("anode", "normalizing flows", "3 h per SR", _SIGMA),
        PublishedTiming("radot", "optimal transport", "10 min per SR", _SIGMA),
        PublishedTiming("vcr", "flow matching", "30 min per SR", _SIGMA),
        PublishedTiming("sigma-linear", "flow matching", "30 min (training) + 30 s per SR", _SIGMA),
        PublishedTiming("sigma-context", "flow matching", "30 min (training) + 30 s per SR", _SIGMA),
    )
}

_RADOT = "RAD-OT, arXiv:2407.19818"
_BDT = "LHCO reference scores (BDT, 5 features)"
_CATHODE = "CATHODE, arXiv:2109.00546"
PUBLISHED_PERFORMANCE: tuple[PublishedValue, ...] = (
    PublishedValue("radot", "sic_1e3", 3000, 11.9, _RADOT, "BDT", 5),
    PublishedValue("radot", "sic_1e3", 1000, 3.8, _RADOT, "BDT", 5),
    PublishedValue("supervised", "sic_1e3", 3000, 13.2, _BDT, "BDT", 5),
    PublishedValue("supervised", "sic_1e3", 1000, 11.5, _BDT, "BDT", 5),
    PublishedValue("idealized", "sic_1e3", 3000, 12.1, _BDT, "BDT", 5),
    PublishedValue("idealized", "sic_1e3", 1000, 10.7, _BDT, "BDT", 5),
    PublishedValue("supervised", "max_sic", 1000, 17.0, _CATHODE, "MLP", 4, approximate=True),
    PublishedValue("idealized", "max_sic", 1000, 14.5, _CATHODE, "MLP", 4, approximate=True),
    PublishedValue("cathode", "max_sic", 1000, 14.0, _CATHODE, "MLP", 4, approximate=True),
    PublishedValue("anode", "max_sic", 1000, 6.5, _CATHODE, "MLP", 4, approximate=True),
)


def published_value(method: str, metric: str, n_sig: int) -> PublishedValue | None:
    """The published value of a registered method's metric at N_sig, if a paper gives one."""
    for entry in PUBLISHED_PERFORMANCE:
        if (entry.method, entry.metric, entry.n_sig) == (method, metric, n_sig):
            return entry
    return None
