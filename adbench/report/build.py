"""Assemble the report document from records: the summary first, then the details per dataset and
signal region, figures, timing, the published comparison, failures and the environment."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

from adbench.report import fig_samples, fig_sensitivity, fig_timing
from adbench.report.comparison import PERFORMANCE_HEADER, TIMING_HEADER, compare
from adbench.report.document import Document
from adbench.report.feature_fidelity import feature_fidelity_rows, format_shortfall, median_shortfall
from adbench.report.performance_section import min_bkg_text, performance_section
from adbench.report.signal_fraction import (
    SIGNAL_FRACTION_HEADER,
    WITHIN_FACTOR,
    signal_fraction_cells,
    signal_fraction_rows,
)
from adbench.report.stats import MIN_SEEDS_FOR_BAND, format_seconds
from adbench.report.summary import SCAN_WINDOWS
from adbench.report.summary_section import summary_section
from adbench.report.tables import (
    facets,
    has_bootstrap_errors,
    infer_variants,
    is_reference,
    label_profiles,
    method_order,
    one_configuration,
    registered_names,
    timing_rows,
)
from adbench.results import Record
from adbench.run_status import read_status

HOW_TO_READ = [
    "**Value ±stat [16%, 84%]**: the median over seeds; ±stat is the statistical error of one seed's value "
    "from the finite test set (a bootstrap of the test set; for the AUCs of templates the calibrated null's "
    "standard deviation); the brackets are the 16% and 84% quantiles over seeds, given only from "
    f"{MIN_SEEDS_FOR_BAND} seeds on. With two seeds both values stand in braces {{a, b}}, with one the value alone.",
    "**Value ± total** (summary, comparison, error bars): the statistical error and the seeds' standard "
    "deviation added in quadrature, the uncertainty of one run's value.",
    "**SIC** = TPR / sqrt(FPR) on the labelled SR test set (held-out signal and background never used for "
    "training); max SIC is taken where at least `min_bkg` test background events pass (by default 25: at most "
    "20% relative uncertainty; CATHODE, arXiv:2109.00546, cuts its published max SIC at FPR 1.84e-5 of its test set). "
    "**S/B** and **S/√B**: injected signal over background events in the SR data: "
    "compare datasets of different size at equal S/B, not equal N_sig.",
    "**Fidelity AUC** separates the template from the true SR background (0.5: indistinguishable); "
    "**template-data AUC** separates it from the SR data (it rises with the signal a good template does not "
    "contain). **Template / SR**: template events per SR data event (`--template-size`); in brackets the "
    "distinct source events per SR data event where the template reuses events (RAD-OT's sideband pairs).",
    "Method names: a profile that changes the method itself carries its own name (e.g. `radot-projection`, "
    "an adbench variant, not the published method); a method run under several profiles is `method:profile`. "
    "idealized (true background as the template) and supervised (truth labels) are references, drawn dashed.",
]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text)


def _choose_nsig(records: list[Record]) -> int:
    n_sigs = sorted({r.n_sig for r in records if r.n_sig > 0}) or sorted({r.n_sig for r in records})
    return min(n_sigs, key=lambda n: (abs(n - 1000), -n))


def _sample_point(records: list[Record], dataset: str) -> tuple[str | None, int]:
    """The SR with the signal and the N_sig nearest 1000: where the report looks at templates closely."""
    if not records:
        return None, 0
    return fig_samples.signal_window(records, dataset) or facets(records)[0][1], _choose_nsig(records)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def build_report(records: list[Record], directory: Path | None = None, skipped_lines: Sequence[int] = (),
                 figures: bool = True) -> Document:
    """The report of ``records`` (the latest record of each task); ``skipped_lines`` are the line numbers
    of the results file that could not be read; ``figures=False`` gives the text and tables only."""
    raw = infer_variants(records)
    labelled = label_profiles(raw)
    records, set_aside = one_configuration(labelled)
    kept = {id(r) for r in records}
    raw = [r for r, label in zip(raw, labelled, strict=True) if id(label) in kept]
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    datasets = sorted({r.dataset for r in records})
    doc = Document(f"adbench report: {', '.join(datasets)}")
    _overview(doc, records, ok, failed, datasets, skipped_lines)
    if set_aside:
        doc.note("Records of an earlier configuration of the same method, SR and N_sig (another template size, "
                 "classifier, window thinning or dataset version) are set aside, so that no seed counts twice and "
                 "no cell mixes settings (per SR and N_sig the newest configuration with a finished task is "
                 "reported): " + ", ".join(f"{m} {_count(n, 'record')}" for m, n in set_aside.items())
                 + ". Rerun the newer configuration's missing seeds, or write each configuration to its own "
                 "directory.")
    status = read_status(directory) if directory is not None else None
    if status is not None and status.incomplete_note():
        doc.note(status.incomplete_note())

    doc.heading("Summary: who wins")
    registered = registered_names(raw, records)
    for dataset in datasets:
        summary_section(doc, records, dataset, several=len(datasets) > 1, registered=registered)
    _methods(doc, raw, records)
    doc.heading("How to read")
    doc.bullets(HOW_TO_READ)

    performance_section(doc, records, ok)
    _feature_fidelity(doc, ok, datasets)
    _signal_fraction(doc, ok, len(datasets) > 1)

    if ok and figures:
        _figures(doc, ok, datasets)
    _timing(doc, ok, datasets, figures)
    _published(doc, records)
    if failed:
        doc.heading("Failures")
        doc.table(["dataset", "method", "SR", "N_sig", "seed", "reason"],
                  [[r.dataset, r.method, r.window, str(r.n_sig), str(r.seed), str(r.error)] for r in failed])
    _environment(doc, records, directory, set_aside)
    return doc


def _overview(doc: Document, records: list[Record], ok: list[Record], failed: list[Record], datasets: list[str],
              skipped_lines: Sequence[int]) -> None:
    seeds = sorted({r.seed for r in records})
    devices = sorted({r.device for r in records})
    doc.paragraph(
        f"{len(ok)} finished and {len(failed)} failed tasks: methods {', '.join(method_order(records))}; "
        f"signal regions {', '.join(dict.fromkeys(w for _, w in facets(records)))} TeV; "
        f"N_sig {', '.join(map(str, sorted({r.n_sig for r in records})))}; seeds {', '.join(map(str, seeds))}; "
        f"profile {', '.join(sorted({r.profile for r in records}))}; hardware: {'; '.join(devices)}."
        + "".join(f" `{name}` generated by version {version}." for name, version in
                  sorted({(r.dataset, r.dataset_version) for r in records if r.dataset_version}))
    )
    if skipped_lines:
        lines = ", ".join(map(str, skipped_lines[:10])) + (", ..." if len(skipped_lines) > 10 else "")
        doc.note(f"{_count(len(skipped_lines), 'unreadable line')} of `results.jsonl` (line {lines}) "
                 "were dropped: the seed counts below leave those records out. Rerun the same command to redo them.")
    if len(datasets) > 1:
        doc.note(f"This directory mixes {len(datasets)} datasets ({', '.join(datasets)}): every table and figure "
                 "is split by dataset; nothing is pooled over them.")
    if failed:
        doc.note(f"{_count(len(failed), 'task')} failed (see Failures): their rows count only the finished seeds.")
    no_errors = [r for r in ok if not has_bootstrap_errors(r)]
    if no_errors:
        which = "These records" if len(no_errors) == len(ok) else f"{len(no_errors)} of {len(ok)} records"
        if all(r.schema < 2 for r in no_errors):
            doc.note(f"{which} store no statistical errors (schema 1, written before adbench computed them): their "
                     "uncertainties are the spread over seeds only.")
        else:
            doc.note(f"{which} store no test-set errors of max SIC, SIC and AUC (written without the test-set "
                     "bootstrap): those uncertainties are the spread over seeds only.")
    per_point = [len(v) for v in _by_point(ok).values()]
    if per_point and min(per_point) < MIN_SEEDS_FOR_BAND:
        spread = f"{min(per_point)}" if min(per_point) == max(per_point) else f"{min(per_point)} to {max(per_point)}"
        doc.note(f"{spread} seeds per point: below {MIN_SEEDS_FOR_BAND} seeds no "
                 "16-84% band is given (the seeds' values are shown instead); run more seeds for bands.")
    if devices and all(str(d).startswith("CPU") for d in devices):
        doc.paragraph("Made on CPU only (no GPU was used): the timings are CPU timings, not comparable with "
                      "published GPU figures (which the report therefore does not set beside them).")


def _by_point(records: list[Record]) -> dict[tuple, list[Record]]:
    out: dict[tuple, list[Record]] = {}
    for r in records:
        out.setdefault((r.dataset, r.window, r.method, r.n_sig), []).append(r)
    return out


def _methods(doc: Document, raw: list[Record], labelled: list[Record]) -> None:
    """One row per method label: what runs under it (registered method, profile, variant)."""
    doc.heading("Methods")
    registered = registered_names(raw, labelled)
    rows = []
    for method in method_order(labelled):
        rs = [r for r in labelled if r.method == method]
        r = rs[0]
        templates = [x for x in rs if x.ok and x.n_template > 0]
        size = "-"
        if templates:
            requested = sorted({x.template_size for x in templates if math.isfinite(x.template_size)})
            size = "/".join(f"{s:g}" for s in requested) or "not recorded"
            distinct = [x.n_template_sources / x.n_template for x in templates if x.n_template_sources > 0]
            if distinct and min(distinct) < 0.99:
                size += f"; distinct source events: {min(distinct):.0%}-{max(distinct):.0%} of the template"
        what = registered[method]
        if r.variant:
            what += f", variant `{r.variant}` (an adbench addition, not the published method)"
            if r.method_info.get("variant_inferred"):
                what += "; named from today's preset (the records predate variant names)"
        rows.append([
            method, what, r.profile, r.family or "-", "per SR" if r.per_window else "once",
            ", ".join(sorted({x.mass_sampler.partition(" (")[0] for x in templates if x.mass_sampler})) or "-", size,
            f"{len(r.features)}: {', '.join(r.features)}" if r.features else "-",
        ])
    doc.table(["label", "method", "profile", "family", "trained", "SR masses", "template / SR data", "features"],
              rows)


def _feature_fidelity(doc: Document, ok: list[Record], datasets: list[str]) -> None:
    """Per template method and feature, chi2 / ndf of template against true background in the SR with
    the signal (where a template is wrong, not only how much)."""
    sections = []
    for dataset in datasets:
        mine = [r for r in ok if r.dataset == dataset]
        window, n_sig = _sample_point(mine, dataset)
        chosen = [r for r in mine if (r.window, r.n_sig) == (window, n_sig)]
        features, rows = feature_fidelity_rows(chosen, method_order(chosen))
        if rows:
            sections.append((dataset, window, n_sig, chosen, features, rows))
    if not sections:
        return
    doc.heading("Template mismodelling per feature")
    doc.paragraph(
        "χ²/ndf of each template's histogram against the true SR background's (two-sample χ² on the bins of "
        "the records' stored histograms, shapes only; median over seeds). A template drawn from the background "
        "itself reads about 1 ± √(2/ndf) (idealized shows it); the feature with the largest value is where a "
        "template's mismodelling, which the classifier mistakes for signal, comes from. The value grows with the "
        "test set: compare methods within a table, not across datasets."
    )
    doc.paragraph(
        "**Largest shortfall**: the feature range where the template has fewer events than the true background "
        "by the largest share of the events (the contiguous bins with the largest summed deficit, within the "
        "histograms' 0.1-99.9% range of the SR data), shown for the seed with the median deficit, with how many "
        "seeds found essentially the same range. In brackets the deficit as a share of the background in that "
        "range and its pull (the deficit over its statistical error; the largest of many ranges, so a faithful "
        "template reads a few units: see idealized). **signal ×**: the signal's share in that range over the "
        "background's. A classifier trained on data against the template takes the background there for data-like. "
        "Where signal × is above 1, that mismodelling raises the method's SIC for a wrong reason (in real data it "
        "would look like an excess wherever the template is short); below 1 it dilutes what the classifier selects. "
        "It is one feature's projection of a five-dimensional classifier: a hint where to look, not the whole cause."
    )
    for dataset, window, n_sig, chosen, features, rows in sections:
        reused = {r.method for r in chosen if 0 < r.n_template_sources < 0.99 * r.n_template}
        doc.heading(f"{dataset}: SR {window} TeV, N_sig = {n_sig}", level=3)
        doc.table(["method", "seeds", *features, "largest shortfall"],
                  [[method + (" §" if method in reused else ""), str(seeds),
                    *(f"{v:.2f}" if math.isfinite(v) else "-" for v in values),
                    format_shortfall(median_shortfall([r for r in chosen if r.method == method]))]
                   for method, values, seeds in rows])
        if reused:
            doc.paragraph("§ the template reuses source events (see template / SR): its counts are not independent "
                          "and its χ² reads high even for a faithful template.")


def _signal_fraction(doc: Document, ok: list[Record], several: bool) -> None:
    rows = signal_fraction_rows(ok)
    if not rows:
        return
    doc.heading("Fitted signal fraction")
    doc.paragraph(
        "Methods that fit the SR's signal fraction w (R-ANODE: (1 - w) p_bkg + w p_sig by maximum likelihood) "
        "against the injected fraction (SR signal / SR data events, per seed). Fitted w: the mean over the kept "
        "checkpoints; held-out w: the maximum-likelihood w on the SR events the signal density was not trained on "
        "(each signal split's validation events, which chose its kept epochs), densities fixed, with its Fisher "
        "error; held-out Z: sqrt(2 [ln L(held-out w) - ln L(0)]) on those events (the log-ratio averaged over "
        "splits, then the median over seeds), an approximate significance of a signal in that fraction of the SR "
        "were p_bkg exact; the epoch choice pushes it up a little, a p_bkg that misses the SR data more. "
        "Signal splits: the signal fits that w, p_sig and the score rest on, of those made (1-2 of 20: a "
        "selection kept one or two of twenty fits, the range over seeds). "
        f"Ratios: medians over seeds of the per-seed ratio, then how many seeds lie within a factor "
        f"{WITHIN_FACTOR:g} of the truth ({1 / WITHIN_FACTOR:g}-{WITHIN_FACTOR:g} x). With a learned background "
        "density the fitted w also absorbs where p_bkg underestimates the SR data, so it measures the background "
        "model too."
    )
    for dataset in dict.fromkeys(row.dataset for row in rows):
        if several:
            doc.heading(dataset, level=3)
        doc.table(SIGNAL_FRACTION_HEADER, [signal_fraction_cells(row) for row in rows if row.dataset == dataset])


def _figures(doc: Document, ok: list[Record], datasets: list[str]) -> None:
    doc.heading("Sensitivity figures")
    for dataset, window in facets(ok):
        if any(r.n_sig > 0 and r.curve for r in ok if (r.dataset, r.window) == (dataset, window)):
            doc.figure(f"sic_{_safe(dataset)}_{_safe(window)}", fig_sensitivity.sic_and_rejection(ok, dataset, window),
                       f"{dataset}, SR {window} TeV: SIC (top) and background rejection (bottom) versus signal "
                       f"efficiency, one column per N_sig; {_band_words(ok, dataset)}")
    for dataset in datasets:
        mine = [r for r in ok if r.dataset == dataset]
        if len({r.n_sig for r in mine}) > 1:
            doc.figure(f"sic_vs_nsig_{_safe(dataset)}", fig_sensitivity.metrics_vs_nsig(ok, dataset),
                       f"{dataset}: max SIC and SIC at FPR 1e-3 versus injected signal, one column per SR, S/B on "
                       "the top axis; error bars: statistical and seed spread in quadrature")
        if any(math.isfinite(r.fidelity_auc) for r in mine):
            doc.figure(f"fidelity_{_safe(dataset)}", fig_sensitivity.fidelity(ok, dataset),
                       f"{dataset}: template fidelity AUC per method (0.5 = indistinguishable from the true "
                       "background), one panel per SR; grey: each method's calibrated null ±2σ")
    doc.heading("Data versus template")
    for dataset in datasets:
        mine = [r for r in ok if r.dataset == dataset]
        window, n_sig = _sample_point(mine, dataset)
        shown = False
        for method in method_order(mine):
            record = fig_samples.sample_record(mine, dataset, window, method, n_sig)
            if record is None or method == "supervised":
                continue
            doc.figure(f"samples_{_safe(dataset)}_{_safe(method)}", fig_samples.feature_histograms(record),
                       f"{dataset}, {method}: SR data, template and true background in SR {window} TeV (the SR "
                       f"with the signal), N_sig = {n_sig}; ratio: template / true background")
            shown = True
        if not shown:
            doc.paragraph(f"`{dataset}`: no stored histograms at N_sig = {n_sig}.")


def _band_words(ok: list[Record], dataset: str) -> str:
    counts = [len(v) for k, v in _by_point(ok).items() if k[0] == dataset]
    if counts and min(counts) >= MIN_SEEDS_FOR_BAND:
        return "median over seeds with the 16-84% band"
    return f"median over seeds with each seed's curve drawn thin (fewer than {MIN_SEEDS_FOR_BAND} seeds: no band)"


def _timing(doc: Document, ok: list[Record], datasets: list[str], figures: bool) -> None:
    doc.heading("Timing")
    doc.paragraph(
        "Wall-clock time in the seeds' form: training once (methods trained on all data, reused for every window; "
        "v_data and the SIGMA variants share one training) plus the time per signal region (per-window fit + "
        "template). The shared classifier is listed apart: it is the same for every method. Device work is "
        "synchronised before each clock reading; medians over tasks."
    )
    rows = timing_rows(ok)
    doc.table(
        ["dataset", "method", "family", "training once", "fit per SR", "template per SR", "classifier per SR",
         f"{SCAN_WINDOWS}-SR scan", "hardware"],
        [[row.dataset, row.method, row.family or "-",
          ("-" if row.per_window else format_seconds(row.shared_fit_s)
           + (f" (shared: {', '.join(row.shared_with)})" if len(row.shared_with) > 1 else "")),
          format_seconds(row.fit_window_s), format_seconds(row.sample_s), format_seconds(row.classify_s),
          format_seconds(row.scan_seconds(SCAN_WINDOWS)), "; ".join(row.devices)] for row in rows],
    )
    reused = [r for r in ok if r.method_info.get("trainings_from_other_tasks")]
    if reused:
        doc.note(
            f"{_count(len(reused), 'task')} ({', '.join(method_order(reused))}) read back "
            f"{_count(sum(r.method_info['trainings_from_other_tasks'] for r in reused), 'training')} that another "
            "task of the run had finished identically (the same model settings, data and seed, e.g. the background "
            "flow of R-ANODE variants, or of ANODE and R-ANODE): their fit times count those trainings' seconds "
            "as if trained there."
        )
    for dataset in datasets if figures else []:
        if any(row.dataset == dataset for row in rows):
            doc.figure(f"timing_{_safe(dataset)}", fig_timing.timing_bars(ok, dataset),
                       f"{dataset}: each single training drawn once, then the work per SR of every method "
                       "(linear axis)")
        if any(row.dataset == dataset and not is_reference(row.method) for row in rows):
            doc.figure(f"amortisation_{_safe(dataset)}", fig_timing.amortisation_plot(ok, dataset),
                       f"{dataset}: total time of a scan versus its number of SRs, extrapolated from the measured "
                       "costs (lines) with the measured scan (points); ×: where a method trained once becomes "
                       "cheaper than one retrained per SR")


def _published(doc: Document, records: list[Record]) -> None:
    doc.heading("Published results, like for like")
    comparison = compare(records)
    if comparison.performance:
        doc.paragraph("Published values beside adbench's where the data, N_sig, classifier family and number of "
                      "features match and the method is the published one (not an adbench variant). The paper's "
                      "S/B is that of its injection on the LHCO R&D data (about 75% of the signal in 3.3-3.7 TeV, "
                      "121,339 QCD events there).")
        doc.table(PERFORMANCE_HEADER, comparison.performance)
        if any("†" in row[4] or "‡" in row[4] for row in comparison.performance):
            doc.paragraph(f"† and ‡ as in the performance tables: a SIC at FPR 1e-3 on fewer than "
                          f"{min_bkg_text(records)} test background events, a template smaller than "
                          "the SR data; neither is like for like with the papers.")
    if comparison.timing:
        doc.paragraph("Published times beside adbench's GPU times:")
        doc.table(TIMING_HEADER, comparison.timing)
    if not comparison.performance and not comparison.timing:
        doc.paragraph("No published value is comparable with this run.")
    if comparison.left_out:
        doc.paragraph("Not compared: " + "; ".join(comparison.left_out) + ".")


def _environment(doc: Document, records: list[Record], directory: Path | None,
                 set_aside: dict[str, int]) -> None:
    doc.heading("Environment")
    versions: dict[str, str] = {}
    for r in records:
        versions.update(r.versions or {})
    schemas = sorted({r.schema for r in records})
    doc.table(["what", "value"], [
        ["hardware", "; ".join(sorted({r.device for r in records}))],
        ["versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))],
        ["git revision", ", ".join(sorted({str(r.git_revision) for r in records}))],
        ["data files (sha256)", ", ".join(f"{name} {digest}" for name, digest in
                                          sorted({(r.dataset, r.dataset_digest or "-") for r in records}))],
        ["record schema", ", ".join(map(str, schemas))],
        ["results", f"results.jsonl beside this report ({len(records)} tasks reported"
                    + (f", {sum(set_aside.values())} of an earlier configuration set aside)" if set_aside else ")")
         if directory else "-"],
    ] + [["command", c] for c in sorted({r.command or "-" for r in records})])
