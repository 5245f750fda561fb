"""The leaderboard: pandas aggregates run records over forget classes and seeds into one row per method.

Three Markdown tables, mean ± std over the method's runs (one run = one forget class × one seed):

- **Forgetting**: recognised ↓ (share of forget-class samples the noise-aware reader still recognises as the
  forget class — read it first) with "⚑ reader disagrees k/n" when in k runs the clean classifier's share of c_f
  (1 − UA) exceeds it by > 15 pp (those runs are named under the table), the reader's mean P(c_f), unrecognisable
  (share it calls noise), the dominant reading of the forget samples (counted over runs), UA ↑ and entropy H of the
  standard classifier (kept for comparison with the papers) and forget-class MMD (distance to real forget-class
  images).
- **Attacks**, under a line naming the attack set(s): relearned max ↓ (maximum of the recognised rate over the
  relearning curve), its excess over Retrain ↓, the curve's area, class-embedding inversion ↓ (+ excess), no forget
  data ↓ and unconditional leakage ↓. A collapsed run's attack scores (retained accuracy below the collapse floor)
  are left out of the means: "n/a (collapsed)" when all of a method's runs collapsed, "(k collapsed)" otherwise.
- **Retained quality and cost**: retained accuracy ↑, MMD ↓ (the headline quality distance), KID ↓, recall ↑,
  coverage ↑ (retained classes; the measures that pass the known-answer table, :mod:`unlearnbench.metrics.quality`;
  FID, precision and density only in the CSV/JSON), unlearning time (s; prior work such as SalUn's mask
  included, and shown separately),
  RTE = t_retrain / t_method ↑, peak memory.

Heavy-tailed metrics (FID, KID, forget-class KID and FID, unlearning time) show "mean · median (per forget class)"
instead of mean ± std (``<col>_median`` and ``<col>_by_class`` in the CSV/JSON). Excess over Retrain is
computed per (forget class, seed) in :func:`records_frame`.

Then 95 % t intervals of the mean for the key metrics (rates clamped to [0, 100 %]) and paired differences
between methods (matched by forget class and seed): a pre-declared confirmatory family (SAFEMax vs every method,
every method vs Retrain) tested with paired t-tests under Holm's correction, every other pair exploratory
(``statistics.py`` states the formulas). Columns a record lacks (older records, the "original" row) are shown "—".
Written as Markdown, CSV (``leaderboard.csv``, ``leaderboard_pairs.csv``), JSON and a plot (recognised rate vs
retained MMD, marker size = time), and printed with the committed reference's main tables beside them, rebuilt
from that reference's ``leaderboard.json`` (:func:`reference_table`). Tables and figures are written through
:mod:`unlearnbench.foundation.report_files`.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from unlearnbench.foundation.cache import atomic_path, write_json_atomic, write_text_atomic
from unlearnbench.foundation.cost import run_time_efficiency
from unlearnbench.foundation.report_files import markdown_table, pyplot, save_figure
from unlearnbench.orchestration.reference import reference_status
from unlearnbench.orchestration.statistics import ALPHA, holm, paired_difference, t_interval

FORGETTING = [  # (record column, leaderboard header); the dominant reading is inserted at DOMINANT_AT
    ("recognised_rate", "recognised ↓"),
    ("reader_forget_prob", "reader P(c_f)"),
    ("unrecognisable_rate", "unrecognisable"),
    ("ua", "UA ↑"),
    ("forget_entropy", "H (forget)"),
    ("forget_mmd", "forget-class MMD"),
]
DOMINANT_AT = 3
ATTACKS = [
    ("relearn_max", "relearned max ↓"),
    ("relearn_excess", "excess over Retrain ↓"),
    ("relearn_area", "relearn area"),
    ("inversion_recognised", "inversion ↓"),
    ("inversion_excess", "inversion excess ↓"),
    ("no_forget_data_recognised", "no forget data ↓"),
    ("null_recognised", "unconditional leakage ↓"),
]
QUALITY_COST = [
    ("retain_accuracy", "retained acc ↑"),
    ("mmd", "MMD ↓"),
    ("kid", "KID ↓"),
    ("recall", "recall ↑"),
    ("coverage", "coverage ↑"),
    ("prepare_seconds", "prior time (s)"),
    ("total_seconds", "unlearning time (s)"),
    ("rte", "RTE ↑"),
    ("peak_memory_mb", "peak mem (MiB)"),
]
EXTRA = [  # aggregated into leaderboard.{csv,json} only
    ("forget_prob", "P(forget) of the classifier"),
    ("fid", "FID (exploratory)"),
    ("precision", "precision (fails the known-answer table)"),
    ("density", "density (fails the known-answer table)"),
    ("forget_kid", "forget-class KID"),
    ("dominant_share", "dominant share"),
    ("kid_std", "KID std within a run"),
    ("forget_fid", "forget-class FID"),
    ("forget_kid_std", "forget-class KID std within a run"),
    ("relearn_recognised_rate", "relearned, last reading"),
    ("relearn_ua", "UA after relearning"),
    ("inversion_row_recognised", "inversion, row c_f re-learned"),
    ("inversion_fresh_recognised", "inversion, fresh vector"),
    ("no_forget_data_excess", "no forget data, excess over Retrain"),
    ("null_excess", "unconditional leakage, excess over Retrain"),
]
METRICS = FORGETTING + ATTACKS + QUALITY_COST + EXTRA
EXCESS_OF = {  # excess column: the attack score it compares with Retrain's (relearning: see relearn_excess)
    "inversion_excess": "inversion_recognised",
    "no_forget_data_excess": "no_forget_data_recognised",
    "null_excess": "null_recognised",
}
EXCESS_COLUMNS = {"relearn_excess", *EXCESS_OF}
ATTACK_COLUMNS = {c for c, _ in ATTACKS} | EXCESS_COLUMNS | {
    "relearn_recognised_rate", "relearn_ua", "inversion_row_recognised", "inversion_fresh_recognised"}
PERCENT = {"ua", "retain_accuracy", "forget_prob", "recognised_rate", "unrecognisable_rate", "dominant_share",
           "reader_forget_prob", "relearn_recognised_rate", "relearn_ua", "relearn_max", "relearn_area",
           "inversion_recognised", "inversion_row_recognised", "inversion_fresh_recognised",
           "no_forget_data_recognised", "null_recognised", "precision", "recall", "coverage"}
PERCENT_POINTS = EXCESS_COLUMNS  # differences of two rates: signed, in pp
KID_COLUMNS = {"kid", "kid_std", "forget_kid", "forget_kid_std", "mmd", "forget_mmd"}  # shown with 3 significant digits
HEAVY_TAILED = {"fid", "kid", "forget_kid", "forget_fid", "total_seconds"}  # mean · median (per forget class)
MAX_CLASSES_LISTED = 6  # more forget classes than this: their range instead of every value
INTERVAL_METRICS = [  # (column, header): 95 % interval of the mean per method
    ("recognised_rate", "recognised ↓"),
    ("relearn_max", "relearned max ↓"),
    ("retain_accuracy", "retained acc ↑"),
    ("mmd", "MMD ↓"),
    ("kid", "KID ↓"),
    ("total_seconds", "unlearning time (s)"),
]
PAIRED_METRICS = [  # (column, header): paired differences between methods, the confirmatory family's metrics
    ("recognised_rate", "recognised (pp)"),
    ("retain_accuracy", "retained acc (pp)"),
    ("mmd", "MMD"),
    ("relearn_max", "relearned max (pp)"),
]
CONFIRMATORY_ANCHORS = ("safemax", "retrain")  # every pair with one of these methods is confirmatory
PAIR_KEY = ["forget_class", "seed"]
INTERVALS_TITLE = "95 % intervals of the mean"
PAIRS_TITLE = "Paired differences (A − B), 95 % intervals; * = significant after Holm's correction (confirmatory)"
MAIN_TITLES = ("Forgetting", "Attacks", "Retained quality and cost")
MISSING = "—"
COLLAPSED = "n/a (collapsed)"
FLAG = "⚑ reader disagrees"

READING_GUIDE = """How to read the scores (mean ± std over runs, ddof = 0; one run = one forget class × one seed):

- **recognised ↓**: share of forget-class samples that a noise-aware evaluation network (the reader; it has an
  extra "unrecognisable" class) still recognises as the forget class c_f; lower = more forgotten. Read `recognised`
  first: it is the forgetting score that noise cannot fool; UA is kept for comparison with the papers.
  **reader P(c_f)**: the reader's mean probability of c_f on those samples. **⚑ reader disagrees k/n**: in k of
  n runs the clean classifier reads more of the samples as c_f (1 − UA) than `recognised` by over 15 pp; those runs
  are named under the table, never averaged away: look at their samples before trusting `recognised`.
- **unrecognisable**: share of forget-class samples the reader calls noise/garbage. High = forgetting by
  destroying the samples rather than by drawing something else. **dominant reading**: the most frequent reading of
  the forget samples in each run, counted over runs (e.g. "unrecognisable 2/3, 6 1/3").
- **UA ↑** = 1 − share of forget-class samples the standard classifier assigns to the forget class (pure noise
  scores high). **H (forget)**: that classifier's mean entropy on them.
- **forget-class MMD**: distance between forget-class samples and real forget-class test images (as MMD below);
  larger = further from the real class. Retrain's value is the "never learned" reference.
- **Attacks** (is the class gone or hidden?), each read with the reader: **relearned max ↓** = the highest
  `recognised` along a relearning attack (fine-tuning on a few forget images, read from step 0 on), its worst
  case; **excess over Retrain ↓** = the largest lead over Retrain's curve under the same attack at any reading step
  (same forget class and seed; Retrain's own is 0): how much more and sooner comes back than for a model that
  never learned the class (by 100 steps Retrain relearns too, so the maxima alone can tie); **relearn area** =
  mean rate over the curve. **inversion ↓**: `recognised` on samples of a class embedding learned with every weight
  frozen (the larger of re-learning row c_f and a fresh vector), with its excess over Retrain.
  **no forget data ↓**: `recognised` after fine-tuning on retained data only. **unconditional leakage ↓**: share of
  unconditional (null-class) samples read as c_f. A model that no longer draws its retained classes (retained
  accuracy below the collapse floor) relearns nothing, which is not robustness: its attack scores are left out of
  the means, "n/a (collapsed)" when every run collapsed, "(k collapsed)" beside the run count otherwise. The line
  above the table names the attack set ("light" or "full") the runs used.
- **retained acc ↑**: classifier accuracy on samples of the retained classes. **MMD ↓**: the unbiased
  Gaussian-kernel MMD² between those samples and real retained-class test images in the reader's features
  (bandwidth: the real features' median distance; bounded by 2; ≈ 0 may be negative): the quality distance that
  ranks blank, noise, faint, shuffled, wrong-class and collapsed sets below real digits on the committed
  known-answer table. **KID ↓**: the same with the cubic kernel, over subsets of half the generated count (a
  second opinion comparable with the literature). **recall ↑** (Kynkäänniemi et al. 2019) / **coverage ↑** (Naeem
  et al. 2020): share of real images that some sample looks like: mode collapse shows as lost recall and coverage.
  FID, precision and density are in the CSV only (FID's real-vs-real is not ≈ 0 at these sizes; a collapsed set
  is perfectly "precise" and "dense").
- **Heavy-tailed metrics** (KID, FID, forget-class KID and FID, unlearning time): "mean · median (forget class: value /
  …)", the per-class values being means over seeds: one broken class can carry the mean, so read the median and
  the per-class values beside it (std in the CSV).
- **unlearning time** includes prior work (e.g. SalUn's mask), also shown alone as prior time. **RTE** = retrain
  time / method time. **Peak memory**: what the method allocates above the shared inputs (README, "Peak memory").
- **Intervals and comparisons** (after the tables): 95 % intervals of each method's mean, a rate's clamped to
  [0, 100 %]. Paired differences between methods: only the comparisons declared in advance (SAFEMax against every
  method, every method against Retrain, on recognised, retained acc, MMD and relearned max) are tested, as one
  family of paired t-tests under Holm's correction at α = 0.05, and only they can get a "*"; every other pair is
  exploratory, shown without a star."""


@dataclass
class TableData:
    """One leaderboard table as cells, rendered as Markdown here (:meth:`markdown`) and as a sortable HTML table by
    the report page: ``columns[i]`` is the record column behind ``headers[i]`` (None for a label such as the method
    or the run count), ``sort_values`` what each cell sorts by (its mean, NaN where missing, or its text), ``above``
    and ``below`` the text printed over and under the table."""

    title: str
    headers: list[str]
    columns: list[str | None]
    rows: list[list[str]]
    sort_values: list[list[float | str]]
    above: str = ""
    below: str = ""

    def markdown(self) -> str:
        parts = [self.above, markdown_table(self.headers, self.rows), self.below]
        return "\n\n".join(part for part in parts if part)


def _sort_value(r: dict, col: str | None, text: str) -> float | str:
    """A cell's sort key: the metric's mean (NaN when missing or all collapsed), or the cell text for labels."""
    if col is None:
        return text
    if text == COLLAPSED:
        return math.nan
    value = r.get(f"{col}_mean")
    return math.nan if _is_missing(value) else float(value)


def _metric_table(title: str, records: list[dict], metrics: list[tuple[str, str]], collapsed: bool = False,
                  above: str = "") -> TableData:
    """The table of ``metrics`` (one row per aggregated record: method, runs, a cell per metric); with
    ``collapsed``, an attack table: "n/a (collapsed)" where every run collapsed."""
    rows, keys = [], []
    for r in records:
        cells = [COLLAPSED if collapsed and _all_collapsed(r) else _metric_cell(r, c) for c, _ in metrics]
        row = [str(r["method"]), _runs(r, collapsed), *cells]
        rows.append(row)
        keys.append([row[0], float(r["runs"]), *(_sort_value(r, c, t) for (c, _), t in zip(metrics, cells,
                                                                                            strict=True))])
    return TableData(title, ["method", "runs", *(h for _, h in metrics)], [None, None, *(c for c, _ in metrics)],
                     rows, keys, above)


def records_frame(records: list[dict]) -> pd.DataFrame:
    """All records as a table, with RTE = t_retrain / t_method and the excess over Retrain filled per (forget
    class, seed).

    RTE uses only a Retrain record of the same forget class, seed *and hardware* (otherwise NaN, shown "—"). The
    excess columns (:data:`EXCESS_OF`) are ``score − score of Retrain`` on the same forget class and seed (Retrain's
    own excess is 0; NaN without such a Retrain record or without the score); relearning's is the largest lead over
    Retrain's curve (:func:`relearn_excess`).
    """
    df = pd.DataFrame(records)
    if df.empty:
        return df
    for col in ("total_seconds", "prepare_seconds", "unlearn_seconds", "peak_memory_mb"):
        if col not in df:
            df[col] = float("nan")
    df["hardware"] = df["hardware"].fillna("") if "hardware" in df else ""
    retrain = df[(df["method"] == "retrain") & (df["status"] == "ok")]
    t_retrain = {(r.forget_class, r.seed, r.hardware): r.total_seconds for r in retrain.itertuples()}

    def rte(row) -> float:
        if row["method"] == "original":
            return float("nan")
        return run_time_efficiency(t_retrain.get((row["forget_class"], row["seed"], row["hardware"])),
                                   row["total_seconds"])

    df["rte"] = df.apply(rte, axis=1)
    df["relearn_excess"] = relearn_excess(df)
    for excess, col in EXCESS_OF.items():
        df[excess] = excess_over_retrain(df, col)
    return df


def relearn_excess(df: pd.DataFrame) -> pd.Series:
    """Each run's largest lead over the relearning curve of the finished Retrain run of the same (forget class,
    seed) at the reading steps both have (:func:`~unlearnbench.metrics.relearning.curve_excess`); Retrain's own is
    0, NaN without such a Retrain run or without curves."""
    from unlearnbench.metrics.relearning import curve_excess

    if "relearn_curve" not in df or not set(PAIR_KEY) <= set(df.columns):
        return pd.Series(float("nan"), index=df.index, dtype=float)
    done = df[(df["method"] == "retrain") & (df["status"] == "ok")]
    curves = {(r["forget_class"], r["seed"]): r["relearn_curve"] for r in done.to_dict("records")
              if isinstance(r.get("relearn_curve"), list)}

    def lead(row) -> float:
        reference = curves.get((row["forget_class"], row["seed"]))
        curve = row.get("relearn_curve")
        return curve_excess(curve, reference) if reference and isinstance(curve, list) else float("nan")

    return df.apply(lead, axis=1).astype(float)


def excess_over_retrain(df: pd.DataFrame, col: str) -> pd.Series:
    """``df[col]`` minus the finished Retrain run's ``col`` of the same (forget class, seed) (their mean if there
    are several); NaN where there is none or either value is missing."""
    values = _numeric(df, col)
    reference = (df["method"] == "retrain") & (df["status"] == "ok") & values.notna()
    if not set(PAIR_KEY) <= set(df.columns) or not reference.any():
        return values * float("nan")
    by_key = values[reference].groupby([df.loc[reference, k] for k in PAIR_KEY]).mean()
    return values - by_key.reindex(pd.MultiIndex.from_frame(df[PAIR_KEY])).to_numpy()


def _numeric(frame: pd.DataFrame, col: str) -> pd.Series:
    """``frame[col]`` as floats (missing column or non-numbers → NaN)."""
    if col not in frame:
        return pd.Series(float("nan"), index=frame.index, dtype=float)
    return pd.to_numeric(frame[col], errors="coerce").astype(float)


def _booleans(frame: pd.DataFrame, col: str) -> pd.Series:
    """``frame[col]`` as 1.0 (True), 0.0 (False) or NaN (missing, or not a bool)."""
    if col not in frame:
        return pd.Series(float("nan"), index=frame.index, dtype=float)
    return frame[col].map(lambda v: float(v) if isinstance(v, bool | np.bool_) else float("nan")).astype(float)


def scored_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The finished runs as scored on the leaderboard: a collapsed run's attack scores (:data:`ATTACK_COLUMNS`)
    are blanked (NaN), since an attack on a broken model shows nothing; its other scores stay."""
    ok = df[df["status"] == "ok"].copy()
    collapsed = _booleans(ok, "collapsed") == 1
    for col in sorted(ATTACK_COLUMNS & set(ok.columns)):
        ok[col] = _numeric(ok, col).mask(collapsed)
    return ok


def dominant_reading(runs: pd.DataFrame) -> str:
    """The dominant reading of the forget samples over ``runs``, counted: e.g. "unrecognisable 2/3, 6 1/3".

    Uses ``dominant_class_name`` (else the ``dominant_class`` index); runs without either are not counted; "—" if
    none has one. Most frequent first, ties by name.
    """
    names = []
    for r in runs.to_dict("records"):
        name = r.get("dominant_class_name")
        if name is None or (isinstance(name, float) and math.isnan(name)):
            index = pd.to_numeric(r.get("dominant_class", float("nan")), errors="coerce")
            name = None if pd.isna(index) else str(int(index))
        if name is not None:
            names.append(str(name))
    if not names:
        return MISSING
    counts = pd.Series(names).value_counts()
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{name} {count}/{len(names)}" for name, count in ordered)


def _class_label(value) -> str:
    """A forget class as written: ``3`` for 3 or 3.0, else ``str(value)``."""
    number = pd.to_numeric(value, errors="coerce")
    return str(int(number)) if not pd.isna(number) and float(number).is_integer() else str(value)


def _runs_named(runs: pd.DataFrame) -> str:
    """The (forget class, seed) of ``runs``: "forget class 3 (seed 0)", "forget classes 0 (seed 0), 2 (seed 1)"."""
    keys = sorted({(_class_label(r.get("forget_class")), _class_label(r.get("seed"))) for r in runs.to_dict("records")})
    listed = ", ".join(f"{fc} (seed {seed})" for fc, seed in keys)
    return ("forget class " if len(keys) == 1 else "forget classes ") + listed


def reader_disagreements(runs: pd.DataFrame) -> dict:
    """How many of ``runs`` carry the reader-disagreement flag (``reader_disagrees`` True): ``reader_disagrees_runs``
    = k, ``reader_checked_runs`` = n (runs that recorded the flag at all) and ``reader_disagrees_at`` naming the
    flagged runs' forget classes and seeds ("" if none)."""
    flag = _booleans(runs, "reader_disagrees")
    flagged = runs[flag == 1]
    return {"reader_disagrees_runs": len(flagged), "reader_checked_runs": int(flag.notna().sum()),
            "reader_disagrees_at": _runs_named(flagged) if len(flagged) else ""}


def _distinct(runs: pd.DataFrame, col: str) -> str:
    """The distinct non-empty values of ``runs[col]``, sorted, joined by ", " ("" if none)."""
    if col not in runs:
        return ""
    return ", ".join(sorted({str(v) for v in runs[col] if not _is_missing(v) and str(v)}))


def _method_order(methods) -> list[str]:
    """Original first, Retrain second, the rest in their order of appearance."""
    methods = list(dict.fromkeys(methods))
    rank = {"original": 0, "retrain": 1}
    return sorted(methods, key=lambda m: (rank.get(m, 2), methods.index(m)))


def _bounds(col: str, difference: bool = False) -> tuple[float, float]:
    """What a value (or, with ``difference``, an A − B difference) of ``col`` can be: [0, 1] for a rate, [−1, 1] for
    a difference of rates, unbounded otherwise."""
    if col in PERCENT:
        return (-1.0, 1.0) if difference else (0.0, 1.0)
    if col in PERCENT_POINTS:
        return -1.0, 1.0
    return -math.inf, math.inf


def _summary(runs: pd.DataFrame, col: str) -> dict:
    """``<col>_mean`` and ``<col>_std`` (ddof = 0) over ``runs``; for ``INTERVAL_METRICS`` also ``<col>_n``, the 95 % t
    half-width ``<col>_ci95`` (NaN for n < 2) and the interval's ends ``<col>_ci_low``/``_ci_high`` (clamped to
    :func:`_bounds`); for ``HEAVY_TAILED`` also ``<col>_n``, ``<col>_median`` and ``<col>_by_class`` (JSON: forget
    class → mean over its seeds)."""
    values = _numeric(runs, col).dropna()
    out = {f"{col}_mean": values.mean() if len(values) else float("nan"),
           f"{col}_std": values.std(ddof=0) if len(values) > 1 else 0.0 if len(values) else float("nan")}
    if col in {c for c, _ in INTERVAL_METRICS}:
        interval = t_interval(values)
        low, high = interval.clamped(*_bounds(col))
        out.update({f"{col}_n": interval.n, f"{col}_ci95": interval.half_width, f"{col}_ci_low": low,
                    f"{col}_ci_high": high})
    if col in HEAVY_TAILED:
        by_class = (values.groupby(runs.loc[values.index, "forget_class"].map(_class_label), sort=False).mean()
                    if "forget_class" in runs else pd.Series(dtype=float))
        order = sorted(by_class.index, key=lambda k: (0, int(k), "") if k.isdigit() else (1, 0, k))
        out.update({f"{col}_n": len(values), f"{col}_median": values.median() if len(values) else float("nan"),
                    f"{col}_by_class": json.dumps({k: float(by_class[k]) for k in order})})
    return out


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per method over its finished runs (:func:`scored_runs`: a collapsed run's attack scores left out):
    :func:`_summary` of every metric, run counts (``runs``, ``failed``, ``collapsed_runs``), the dominant reading,
    :func:`reader_disagreements`, the attack set(s) and collapse floor(s) recorded."""
    if df.empty:
        return pd.DataFrame()
    scored = scored_runs(df)
    rows = []
    for method in _method_order(df["method"]):
        group = df[df["method"] == method]
        good = scored[scored["method"] == method]
        row: dict = {"method": method, "runs": len(group), "failed": int((group["status"] != "ok").sum()),
                     "collapsed_runs": int((_booleans(good, "collapsed") == 1).sum()),
                     "dominant_reading": dominant_reading(good), **reader_disagreements(good),
                     "attack_set": _distinct(good, "attack_set"), "collapse_floor": _distinct(good, "collapse_floor")}
        for col, _ in METRICS:
            row.update(_summary(good, col))
        rows.append(row)
    return pd.DataFrame(rows)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _count(r: dict, key: str) -> int:
    """An integer count of an aggregated row, 0 when the table (an older one) lacks it."""
    value = r.get(key)
    return 0 if _is_missing(value) else int(value)


def _number(value: float, col: str, signed: bool = False) -> str:
    """A value of ``col`` as displayed: rates in %, rate differences in pp, KID with 3 significant digits (it spans
    orders of magnitude, from ≈ 0 for a faithful model to 10⁹ for noise), memory in whole MiB, everything else with
    2 decimals."""
    sign = "+" if signed else ""
    if col in PERCENT or col in PERCENT_POINTS:
        return f"{100 * value:{sign}.1f}"
    if col in KID_COLUMNS:
        return f"{value:{sign}.3g}"
    if col == "peak_memory_mb":
        return f"{value:{sign}.0f}"
    return f"{value:{sign}.2f}"


def _compact(value: float, col: str) -> str:
    """A heavy-tailed value, short: KID with 3 significant digits, others with thousands separators and 0 decimals
    from 100 up, 1 decimal from 10, else 2."""
    if col in KID_COLUMNS:
        return f"{value:.3g}"
    size = abs(value)
    return f"{value:,.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"


def _unit(col: str) -> str:
    return " %" if col in PERCENT else " pp" if col in PERCENT_POINTS else ""


def value_text(value: float, col: str, signed: bool = False) -> str:
    """One value of ``col`` as the tables show it, with its unit ("—" when missing)."""
    return MISSING if _is_missing(value) else f"{_number(value, col, signed)}{_unit(col)}"


def _cell(mean: float, std: float, col: str) -> str:
    """"mean ± std unit"; a difference (excess over Retrain) with its sign."""
    if _is_missing(mean):
        return MISSING
    return f"{_number(mean, col, col in PERCENT_POINTS)} ± {_number(std, col)}{_unit(col)}"


def heavy_cell(r: dict, col: str) -> str:
    """A heavy-tailed metric of an aggregated row: "mean M · median D (0: v₀ / 1: v₁ / …)" with the per-forget-class
    values (means over seeds; their range "per class lo–hi" beyond ``MAX_CLASSES_LISTED`` classes, nothing for one
    class), just the value for a single run or when every run has the same value (std ≤ 10⁻¹² · |mean|), and
    mean ± std for an older table without medians."""
    mean, median = r.get(f"{col}_mean"), r.get(f"{col}_median")
    if _is_missing(mean):
        return MISSING
    if _is_missing(median):
        return _cell(mean, r.get(f"{col}_std"), col)
    std = r.get(f"{col}_std")
    if _count(r, f"{col}_n") == 1 or (not _is_missing(std) and std <= 1e-12 * abs(mean)):
        return _compact(mean, col)
    by_class = json.loads(r.get(f"{col}_by_class") or "{}")
    text = f"mean {_compact(mean, col)} · median {_compact(median, col)}"
    if len(by_class) > MAX_CLASSES_LISTED:
        return text + f" (per class {_compact(min(by_class.values()), col)}–{_compact(max(by_class.values()), col)})"
    if len(by_class) > 1:
        return text + " (" + " / ".join(f"{k}: {_compact(v, col)}" for k, v in by_class.items()) + ")"
    return text


def _metric_cell(r: dict, col: str) -> str:
    """The cell of metric ``col`` in an aggregated row: :func:`heavy_cell` for heavy-tailed ones, else mean ± std."""
    if col in HEAVY_TAILED:
        return heavy_cell(r, col)
    return _cell(r.get(f"{col}_mean"), r.get(f"{col}_std"), col)


def _all_collapsed(r: dict) -> bool:
    finished = _count(r, "runs") - _count(r, "failed")
    return _count(r, "collapsed_runs") > 0 and _count(r, "collapsed_runs") >= finished


def _runs(r: dict, collapsed: bool = False) -> str:
    """The run count, with "(k failed)" and, with ``collapsed``, "(k collapsed)" when there are any."""
    notes = [f"{_count(r, 'failed')} failed"] if _count(r, "failed") else []
    if collapsed and _count(r, "collapsed_runs"):
        notes.append(f"{_count(r, 'collapsed_runs')} collapsed")
    return f"{r['runs']}" + (f" ({', '.join(notes)})" if notes else "")


def _forgetting_table(records: list[dict]) -> TableData:
    """The Forgetting table; "⚑ reader disagrees k/n" beside `recognised`, the dominant reading inserted at
    ``DOMINANT_AT`` and the flagged runs named under it."""
    data = _metric_table(MAIN_TITLES[0], records, FORGETTING)
    at = 2 + DOMINANT_AT
    data.headers.insert(at, "dominant reading")
    data.columns.insert(at, None)
    flagged = []
    for r, row, keys in zip(records, data.rows, data.sort_values, strict=True):
        k = _count(r, "reader_disagrees_runs")
        if k:
            row[2] += f" {FLAG} {k}/{_count(r, 'reader_checked_runs')}"
            flagged.append(f"- {r['method']}: {r.get('reader_disagrees_at')}")
        row.insert(at, r.get("dominant_reading", MISSING))
        keys.insert(at, row[at])
    if flagged:
        data.below = (f"{FLAG}: the clean classifier's share of c_f (1 − UA) exceeds `recognised` by more than "
                      "15 pp, so `recognised` may understate what a person reads; look at these runs' samples:\n"
                      + "\n".join(flagged))
    return data


def attack_heading(records: list[dict]) -> str:
    """The line above the Attacks table: which attack set(s) the runs used (by method when they differ) and the
    collapsed rule with the collapse floor(s) recorded."""
    sets: dict[str, list[str]] = {}
    floors: set[str] = set()
    for r in records:
        for name in ("" if _is_missing(r.get("attack_set")) else str(r["attack_set"])).split(", "):
            if name:
                sets.setdefault(name, []).append(str(r["method"]))
        if not _is_missing(r.get("collapse_floor")) and str(r["collapse_floor"]):
            floors.update(str(r["collapse_floor"]).split(", "))
    if not sets:
        used = "Attack set: not recorded."
    elif len(sets) == 1:
        used = f"Attack set: {next(iter(sets))}."
    else:
        used = "Attack sets: " + "; ".join(f"{name} ({', '.join(methods)})" for name, methods in sorted(sets.items()))
        used += "."
    floor = (" of " + " / ".join(f"{100 * float(f):.0f} %" for f in sorted(floors, key=float))) if floors else ""
    return (f"{used} Attack scores leave out collapsed runs (retained accuracy below the collapse floor{floor}): "
            f"\"{COLLAPSED}\" = every run of the method collapsed, \"(k collapsed)\" beside the run count = k runs "
            "left out.")


def main_table_data(table: pd.DataFrame) -> list[TableData]:
    """The three main tables of an aggregated ``table``: "Forgetting" (with the flagged runs under it), "Attacks"
    (under its attack-set line) and "Retained quality and cost". Columns the table lacks (an older
    ``leaderboard.json``) are shown "—"."""
    records = table.to_dict("records")
    return [_forgetting_table(records),
            _metric_table(MAIN_TITLES[1], records, ATTACKS, collapsed=True, above=attack_heading(records)),
            _metric_table(MAIN_TITLES[2], records, QUALITY_COST)]


def main_tables(table: pd.DataFrame) -> list[tuple[str, str]]:
    """The three main tables (:func:`main_table_data`) as (title, Markdown body)."""
    return [(data.title, data.markdown()) for data in main_table_data(table)]


def to_markdown(table: pd.DataFrame) -> str:
    """The three main tables (:func:`main_tables`), each under a ``##`` heading."""
    return "\n\n".join(f"## {title}\n\n{body}" for title, body in main_tables(table))


def distinct_labels(values: pd.Series) -> str:
    """The distinct values of a record column (the runs' hardware, the code that made them), sorted and
    comma-separated; "not recorded" if there is none."""
    return ", ".join(sorted({str(h) for h in values.fillna("") if h})) or "not recorded"


def _interval_cell(r: dict, col: str, runs_ok: int) -> str:
    """"mean [low, high]" of the 95 % interval (a rate's clamped to [0, 100 %]), "(n = k)" when only k runs have
    the metric, "n/a (collapsed)" for an attack score when every run collapsed."""
    mean, n = r.get(f"{col}_mean"), _count(r, f"{col}_n")
    if col in ATTACK_COLUMNS and _all_collapsed(r):
        return COLLAPSED
    if n == 0 or _is_missing(mean):
        return MISSING
    if n < 2:
        return "n = 1: no interval"
    text = f"{_number(mean, col)} [{_number(r[f'{col}_ci_low'], col)}, {_number(r[f'{col}_ci_high'], col)}]{_unit(col)}"
    return text + (f" (n = {n})" if n != runs_ok else "")


def interval_table(table: pd.DataFrame) -> TableData:
    """The 95 % interval of the mean per method for ``INTERVAL_METRICS``, with its explanation above."""
    rows, keys = [], []
    for r in table.to_dict("records"):
        runs_ok = int(r["runs"] - r["failed"])
        cells = [_interval_cell(r, c, runs_ok) for c, _ in INTERVAL_METRICS]
        rows.append([r["method"], str(runs_ok), *cells])
        keys.append([r["method"], float(runs_ok), *(_sort_value(r, c, t) for (c, _), t in zip(INTERVAL_METRICS, cells,
                                                                                                strict=True))])
    intro = ("Mean [95 % interval] = x̄ ± t₀.₉₇₅,ₙ₋₁ · s / √n over the n finished runs of each method (one run = one "
             "forget class × one seed of this plan; s = sample std, ddof = 1). The interval is over forget classes "
             "and seeds: it says how well n runs pin down the method's mean, not the spread of single runs. A rate's "
             "interval is clamped to [0, 100 %]: it never runs past the bounds a share can take. Relearned max "
             "leaves out collapsed runs. With n = 1 there is no interval; \"(n = k)\" marks a metric that only k "
             "runs recorded.")
    return TableData(INTERVALS_TITLE, ["method", "n", *(h for _, h in INTERVAL_METRICS)],
                     [None, None, *(c for c, _ in INTERVAL_METRICS)], rows, keys, intro)


def intervals_markdown(table: pd.DataFrame) -> str:
    """:func:`interval_table` under its ``##`` heading."""
    return f"## {INTERVALS_TITLE}\n\n" + interval_table(table).markdown()


def comparison_family(a: str, b: str) -> str:
    """"confirmatory" for a pair declared before any run (one of :data:`CONFIRMATORY_ANCHORS`: SAFEMax against
    every method, every method against Retrain), else "exploratory"."""
    return "confirmatory" if a in CONFIRMATORY_ANCHORS or b in CONFIRMATORY_ANCHORS else "exploratory"


def paired_differences(df: pd.DataFrame, metrics: list[tuple[str, str]] | None = None,
                       alpha: float = ALPHA) -> pd.DataFrame:
    """For every pair (A, B) of methods other than "original" (A before B in leaderboard order) and every metric:
    the mean of A − B over the finished runs they share a (forget class, seed) with (a collapsed run's attack
    scores left out, :func:`scored_runs`), its 95 % t interval (a rate difference's clamped to [−1, 1]), whether
    that interval excludes 0 (``interval_excludes_0``, uncorrected; NaN when n < 2), the two-sided paired t-test's
    ``p_value`` and the pair's ``family`` (:func:`comparison_family`).

    The confirmatory rows with a p-value form one family corrected by Holm's step-down rule at ``alpha``
    (:func:`~unlearnbench.orchestration.statistics.holm`): ``p_holm`` (adjusted p) and ``holm_significant``
    (p_holm ≤ α); both NaN on exploratory and untestable rows. Raw units (rates as fractions)."""
    columns = ["a", "b", "family", "metric", "n", "mean_diff", "ci_low", "ci_high", "half_width",
               "interval_excludes_0", "p_value", "p_holm", "holm_significant"]
    metrics = metrics if metrics is not None else PAIRED_METRICS
    if df.empty or not set(PAIR_KEY) <= set(df.columns):
        return pd.DataFrame(columns=columns)
    ok = scored_runs(df)
    methods = [m for m in _method_order(df["method"]) if m != "original"]
    per_method = {}
    for method in methods:
        runs = ok[ok["method"] == method]
        values = pd.DataFrame({c: _numeric(runs, c) for c, _ in metrics})
        values.index = pd.MultiIndex.from_frame(runs[PAIR_KEY]) if len(runs) else pd.MultiIndex.from_tuples(
            [], names=PAIR_KEY)
        per_method[method] = values.groupby(level=PAIR_KEY).mean() if len(values) else values
    rows = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            for col, _ in metrics:
                diff = paired_difference(per_method[a][col], per_method[b][col])
                low, high = diff.interval.clamped(*_bounds(col, difference=True))
                rows.append({"a": a, "b": b, "family": comparison_family(a, b), "metric": col, "n": diff.n,
                             "mean_diff": diff.mean, "ci_low": low, "ci_high": high,
                             "half_width": diff.interval.half_width,
                             "interval_excludes_0": float("nan") if diff.significant is None else diff.significant,
                             "p_value": diff.p_value, "p_holm": float("nan"), "holm_significant": float("nan")})
    pairs = pd.DataFrame(rows, columns=columns)
    family = (pairs["family"] == "confirmatory") & pairs["p_value"].notna()
    if family.any():
        corrected = holm(pairs.loc[family, "p_value"], alpha)
        pairs.loc[family, "p_holm"] = corrected.adjusted
        pairs["holm_significant"] = pairs["holm_significant"].astype(object)
        pairs.loc[family, "holm_significant"] = corrected.rejected
    return pairs


def _pair_cell(row: dict) -> str:
    if row["n"] == 0 or _is_missing(row["mean_diff"]):
        return MISSING
    if row["n"] < 2:
        return "n < 2"
    col = row["metric"]
    holm_significant = row["holm_significant"]
    starred = isinstance(holm_significant, bool | np.bool_) and bool(holm_significant)
    star = " *" if row["family"] == "confirmatory" and starred else ""
    return (f"{_number(row['mean_diff'], col, True)} [{_number(row['ci_low'], col, True)}, "
            f"{_number(row['ci_high'], col, True)}]{star}")


def _pair_table(title: str, pairs: pd.DataFrame, metrics: list[tuple[str, str]]) -> TableData:
    """One row per pair (A, B) of ``pairs``: A, B, n, one cell per metric ("(n = k)" where fewer); cells sort by
    the mean difference."""
    rows, keys = [], []
    for (a, b), group in pairs.groupby(["a", "b"], sort=False):
        by_metric = {r["metric"]: r for r in group.to_dict("records")}
        n = max(int(r["n"]) for r in by_metric.values())
        cells, values = [], []
        for col, _ in metrics:
            r = by_metric.get(col)
            cell = MISSING if r is None else _pair_cell(r)
            if r is not None and 2 <= r["n"] != n:
                cell += f" (n = {int(r['n'])})"
            cells.append(cell)
            values.append(math.nan if r is None or _is_missing(r["mean_diff"]) else float(r["mean_diff"]))
        rows.append([a, b, str(n), *cells])
        keys.append([a, b, float(n), *values])
    return TableData(title, ["A", "B", "n", *(h for _, h in metrics)], [None, None, None, *(c for c, _ in metrics)],
                     rows, keys)


def pair_tables(pairs: pd.DataFrame, metrics: list[tuple[str, str]] | None = None,
                alpha: float = ALPHA) -> tuple[str, list[TableData]]:
    """``paired_differences`` as (explanation, tables): the confirmatory pairs (Holm-significant ones starred), then
    the exploratory ones (never starred); no table when there are fewer than two methods besides "original"."""
    metrics = metrics if metrics is not None else PAIRED_METRICS
    names = ", ".join(h.split(" (")[0] for _, h in metrics)
    intro = ("A − B on the runs both methods have for the same forget class and seed (n pairs): mean difference "
             "[95 % interval] = d̄ ± t₀.₉₇₅,ₙ₋₁ · s_d / √n, s_d = sample std of the differences; a rate difference's "
             "interval is clamped to [−100, +100] pp. Attack scores of collapsed runs are left out. Declared before "
             "any run, the **confirmatory** comparisons are SAFEMax against every other method and every method "
             f"against Retrain (each pair once, \"original\" left out) on {names}: their two-sided paired t-tests "
             "(t = d̄ / (s_d / √n), n − 1 degrees of freedom) form one family, corrected by Holm's step-down rule "
             f"at α = {alpha:g}, and * marks a Holm-adjusted p ≤ {alpha:g}. Every other pair is **exploratory**: "
             "its uncorrected interval is shown, never starred — a lead to check on new runs, not a finding. "
             "\"n < 2\" = one pair only, no test. Rates in percentage points (pp); \"original\" is left out. "
             "p-values, Holm-adjusted p-values and the family of every comparison are in `leaderboard_pairs.csv` "
             "(raw units).")
    if not len(pairs):
        return intro, []
    tables = []
    for family, label in (("confirmatory", "Confirmatory"), ("exploratory", "Exploratory")):
        subset = pairs[pairs["family"] == family]
        if family == "confirmatory":
            m = int(subset["p_value"].notna().sum())
            label += f" (Holm over m = {m} tests at α = {alpha:g}; * = significant)"
        else:
            label += " (uncorrected, never starred)"
        tables.append(_pair_table(label, subset, metrics))
    return intro, tables


def pairs_markdown(pairs: pd.DataFrame, metrics: list[tuple[str, str]] | None = None, alpha: float = ALPHA) -> str:
    """:func:`pair_tables` as Markdown under its ``##`` heading."""
    intro, tables = pair_tables(pairs, metrics, alpha)
    if not tables:
        return f"## {PAIRS_TITLE}\n\n{intro}\n\nFewer than two methods besides \"original\": no pairs."
    parts = [f"**{t.title}**:\n\n{t.markdown() if t.rows else 'none.'}" for t in tables]
    return f"## {PAIRS_TITLE}\n\n{intro}\n\n" + "\n\n".join(parts)


def _plot_axes(table: pd.DataFrame) -> tuple[str, str] | None:
    """(x, y) columns of the plot: x = recognised rate (else UA, plotted as 1 − UA), y = MMD (else KID, else
    FID: older records)."""
    def present(col: str) -> bool:
        return f"{col}_mean" in table and table[f"{col}_mean"].notna().any()

    x = "recognised_rate" if present("recognised_rate") else "ua" if present("ua") else None
    y = next((c for c in ("mmd", "kid", "fid") if present(c)), None)
    return (x, y) if x and y else None


def plot(table: pd.DataFrame, path: Path) -> None:
    """Forgetting vs retained quality, one labelled point per method: x = recognised rate of the forget class (%;
    1 − UA when no record has one), y = MMD on the retained classes (KID, then FID, for older records; log scale when
    the values span > 100×), error bars = std across runs, marker size = unlearning time."""
    axes = _plot_axes(table)
    if axes is None:
        return
    x_col, y_col = axes
    t = table.dropna(subset=[f"{x_col}_mean", f"{y_col}_mean"])
    x = 100 * (t[f"{x_col}_mean"] if x_col == "recognised_rate" else 1 - t[f"{x_col}_mean"])
    y = t[f"{y_col}_mean"]
    xerr = (100 * t[f"{x_col}_std"]).fillna(0)
    yerr = t[f"{y_col}_std"].fillna(0)
    times = t["total_seconds_mean"].fillna(0) if "total_seconds_mean" in t else pd.Series(0.0, index=t.index)
    sizes = 40 + 400 * (times / times.max() if times.max() > 0 else times)

    fig, ax = pyplot().subplots(figsize=(6.8, 4.6), dpi=120)
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="gray", alpha=0.6, capsize=2, lw=1)
    ax.scatter(x, y, s=sizes, alpha=0.6)
    for method, xi, yi, ti in zip(t["method"], x, y, times, strict=True):
        ax.annotate(f"{method} ({ti:.0f} s)", (xi, yi), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("forget class recognised (%) ↓ (lower = forgotten)" if x_col == "recognised_rate"
                  else "forget class classified as itself, 1 − UA (%) ↓ (no recognised rate recorded)")
    ax.set_ylabel({"mmd": "MMD", "kid": "KID", "fid": "FID"}[y_col] + " on retained classes ↓")
    positive = y[y > 0]
    if len(positive) and positive.max() / positive.min() > 100:  # collapsed models score orders of magnitude higher
        if (y > 0).all():
            ax.set_yscale("log")
        else:  # the unbiased MMD and KID can be slightly negative
            ax.set_yscale("symlog", linthresh=float(positive.min()))
    ax.set_title("Forgetting vs retained quality (bars = std over runs, size = time)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def write_leaderboard(out_dir: str | Path, records: list[dict], protocol: str = "", skipped: int = 0,
                      reference_dir: str | Path | None = None, stream=None) -> pd.DataFrame:
    """Write ``runs.csv``, ``leaderboard.{md,csv,json,png}`` and ``leaderboard_pairs.csv`` under ``out_dir`` from
    ``records`` (the current plan's only: the caller selects them) and print the tables, with the committed
    reference table beside them.

    ``skipped`` (records of other keys in the same folder) is reported, never averaged in.
    """
    out_dir = Path(out_dir)
    stream = stream or sys.stdout
    df = records_frame(records)
    if df.empty:
        print("no finished runs to put on the leaderboard", file=stream)
        return df
    table = aggregate(df)
    pairs = paired_differences(df)
    protocol_file = out_dir / "protocol.txt"
    if protocol:  # kept so that `unlearnbench leaderboard` can rebuild the table with its protocol
        write_text_atomic(protocol_file, protocol + "\n")
    elif protocol_file.is_file():
        protocol = protocol_file.read_text().strip()
    with atomic_path(out_dir / "runs.csv") as tmp:
        df.drop(columns=[c for c in ("traceback",) if c in df]).to_csv(tmp, index=False)
    with atomic_path(out_dir / "leaderboard.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_dir / "leaderboard_pairs.csv") as tmp:
        pairs.to_csv(tmp, index=False)
    markdown = to_markdown(table)
    intervals = intervals_markdown(table)
    failures = df[df["status"] != "ok"]
    notes = "".join(f"\n- {r.method} (forget {r.forget_class}, seed {r.seed}) FAILED: {r.error}"
                    for r in failures.itertuples())
    rte_note = ("" if (df["method"] == "retrain").any() else
                "\n\nRTE is \"—\" because this plan has no Retrain run (RTE is only computed against a Retrain timed "
                "on the same hardware).")
    skipped_note = (f"\n\n{skipped} record(s) of other settings, versions or hardware in {out_dir / 'runs'} are not "
                    "shown." if skipped else "")
    hardware = distinct_labels(df["hardware"])
    code = distinct_labels(df.get("code_fingerprint", pd.Series(dtype=object)))  # the records' code, not this one
    text = (f"# Leaderboard: {df['profile'].iloc[0]}\n\n{protocol}\n\nMeasured on: {hardware}; records made by "
            f"code {code}.\n\n"
            f"{READING_GUIDE}{rte_note}\n\n{markdown}\n\n{intervals}\n\n{pairs_markdown(pairs)}\n"
            + (f"\nFailed runs:{notes}\n" if notes else "") + skipped_note.lstrip("\n")
            + ("\n" if skipped_note else ""))
    write_text_atomic(out_dir / "leaderboard.md", text)
    if _plot_axes(table) is not None:
        plot(table, out_dir / "leaderboard.png")
    write_json_atomic(out_dir / "leaderboard.json", table.to_dict("records"))
    reference = reference_table(reference_dir) if reference_dir else ""
    print("\n" + protocol + f"\n\nYours ({hardware}; code {code}):\n\n" + markdown + "\n\n" + intervals
          + f"\n\nPaired differences between methods: {out_dir / 'leaderboard.md'} and "
          f"{out_dir / 'leaderboard_pairs.csv'}." + (f"\n\nFailed runs:{notes}" if notes else "")
          + skipped_note + (f"\n\n{reference}" if reference else "") + "\n", file=stream, flush=True)
    return table


def reference_table(reference_dir: str | Path) -> str:
    """The committed reference leaderboard of a profile, or "" if there is none: the hardware its runs were measured
    on and its three main tables (an older table's missing columns shown "—"), rebuilt from its
    ``leaderboard.json`` (the aggregated table as written) and the ``hardware`` column of its ``runs.csv``, under
    one line saying what made it and whether it is validated for the current code
    (:func:`~unlearnbench.orchestration.reference.reference_status`). Interval and paired-difference tables are
    left out."""
    reference_dir = Path(reference_dir)
    path = reference_dir / "leaderboard.json"
    if not path.is_file():
        return ""
    table = pd.DataFrame(json.loads(path.read_text()))
    runs = reference_dir / "runs.csv"
    hardware = pd.read_csv(runs, usecols=lambda c: c == "hardware") if runs.is_file() else pd.DataFrame()
    measured = distinct_labels(hardware["hardware"] if "hardware" in hardware else pd.Series(dtype=object))
    parts = [f"{title}:\n{body}" for title, body in main_tables(table)]
    return (f"Reference ({reference_dir}, {measured}):\n{reference_status(reference_dir)}.\n\n"
            + "\n\n".join(parts))
