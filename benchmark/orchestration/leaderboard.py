"""The leaderboard: pandas aggregates run records over forget classes and seeds into one row per method.

Two Markdown tables, mean ± std over the method's runs (one run = one forget class × one seed):

- **Forgetting**: recognised ↓ (share of forget-class samples a noise-aware evaluation network still recognises as
  the forget class — read it first), unrecognisable (share it calls noise), the dominant reading of the forget
  samples (counted over runs), UA ↑ and entropy H of the standard classifier (kept for comparison with the papers),
  forget-class KID (distance to real forget-class images) and relearned ↓ (recognised after a relearning attack).
- **Retained quality and cost**: retained accuracy ↑, FID ↓, KID ↓ (retained classes), unlearning time (s;
  prior work such as SalUn's mask included, and shown separately), RTE = t_retrain / t_method ↑, peak memory.

Then 95 % t intervals of the mean for the key metrics and paired differences between methods (matched by forget
class and seed; ``statistics.py`` states the formulas). Columns a record lacks (older records, the "original" row)
are shown "—". Written as Markdown, CSV (``leaderboard.csv``, ``leaderboard_pairs.csv``), JSON and a plot
(recognised rate vs retained KID, marker size = time), and printed with the committed reference's main tables
beside them, rebuilt from that reference's ``leaderboard.json`` (:func:`reference_table`). Tables and figures are
written through :mod:`unlearnbench.foundation.report_files`.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd

from unlearnbench.foundation.cache import atomic_path, write_json_atomic, write_text_atomic
from unlearnbench.foundation.cost import run_time_efficiency
from unlearnbench.foundation.report_files import markdown_table, pyplot, save_figure
from unlearnbench.orchestration.reference import reference_status
from unlearnbench.orchestration.statistics import paired_difference, t_interval

FORGETTING = [  # (record column, leaderboard header); the dominant reading is inserted after the second column
    ("recognised_rate", "recognised ↓"),
    ("unrecognisable_rate", "unrecognisable"),
    ("ua", "UA ↑"),
    ("forget_entropy", "H (forget)"),
    ("forget_kid", "forget-class KID"),
    ("relearn_recognised_rate", "relearned ↓"),
]
QUALITY_COST = [
    ("retain_accuracy", "retained acc ↑"),
    ("fid", "FID ↓"),
    ("kid", "KID ↓"),
    ("prepare_seconds", "prior time (s)"),
    ("total_seconds", "unlearning time (s)"),
    ("rte", "RTE ↑"),
    ("peak_memory_mb", "peak mem (MiB)"),
]
EXTRA = [  # aggregated into leaderboard.{csv,json} only
    ("forget_prob", "P(forget)"),
    ("dominant_share", "dominant share"),
    ("kid_std", "KID std within a run"),
    ("forget_fid", "forget-class FID"),
    ("forget_kid_std", "forget-class KID std within a run"),
    ("relearn_ua", "UA after relearning"),
]
METRICS = FORGETTING + QUALITY_COST + EXTRA
PERCENT = {"ua", "retain_accuracy", "forget_prob", "recognised_rate", "unrecognisable_rate", "dominant_share",
           "relearn_recognised_rate", "relearn_ua"}
KID_COLUMNS = {"kid", "kid_std", "forget_kid", "forget_kid_std"}  # shown with 3 significant digits
INTERVAL_METRICS = [  # (column, header): 95 % interval of the mean per method
    ("recognised_rate", "recognised ↓"),
    ("retain_accuracy", "retained acc ↑"),
    ("kid", "KID ↓"),
    ("fid", "FID ↓"),
    ("total_seconds", "unlearning time (s)"),
]
PAIRED_METRICS = [  # (column, header): paired differences between methods
    ("recognised_rate", "recognised (pp)"),
    ("retain_accuracy", "retained acc (pp)"),
    ("kid", "KID"),
]
PAIR_KEY = ["forget_class", "seed"]
INTERVALS_TITLE = "95 % intervals of the mean"
PAIRS_TITLE = "Paired differences (A − B), 95 % intervals; * = larger than its spread"
MAIN_TITLES = ("Forgetting", "Retained quality and cost")
MISSING = "—"

READING_GUIDE = """How to read the scores (mean ± std over runs, ddof = 0; one run = one forget class × one seed):

- **recognised ↓**: share of forget-class samples that a noise-aware evaluation network (it has an extra
  "unrecognisable" class) still recognises as the forget class; lower = more forgotten. Read `recognised` first: it
  is the forgetting score that noise cannot fool; UA is kept for comparison with the papers.
- **unrecognisable**: share of forget-class samples that network calls noise/garbage. High = forgetting by
  destroying the samples rather than by drawing something else. **dominant reading**: the most frequent reading of
  the forget samples in each run, counted over runs (e.g. "unrecognisable 2/3, 6 1/3").
- **UA ↑** = 1 − share of forget-class samples the standard classifier assigns to the forget class (pure noise
  scores high). **H (forget)**: that classifier's mean entropy on them.
- **forget-class KID**: KID between forget-class samples and real forget-class test images; larger = further
  from the real class. Retrain's value is the "never learned" reference.
- **relearned ↓**: `recognised` after a relearning attack (a few fine-tuning steps on a few forget images); lower =
  harder to relearn, Retrain's value is the reference.
- **retained acc ↑**: classifier accuracy on samples of the retained classes. **FID ↓ / KID ↓**: distance of
  those samples to real retained-class test images (KID: torchmetrics, unbiased, 3 significant digits; ≈ 0 may be
  negative).
- **unlearning time** includes prior work (e.g. SalUn's mask), also shown alone as prior time. **RTE** = retrain
  time / method time. **Peak memory**: what the method allocates above the shared inputs (README, "Peak memory")."""


def records_frame(records: list[dict]) -> pd.DataFrame:
    """All records as a table, with RTE = t_retrain / t_method filled per (forget class, seed).

    RTE uses only a Retrain record of the same forget class, seed *and hardware* (otherwise NaN, shown "—").
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
    return df


def _numeric(frame: pd.DataFrame, col: str) -> pd.Series:
    """``frame[col]`` as floats (missing column or non-numbers → NaN)."""
    if col not in frame:
        return pd.Series(float("nan"), index=frame.index, dtype=float)
    return pd.to_numeric(frame[col], errors="coerce").astype(float)


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


def _method_order(methods) -> list[str]:
    """Original first, Retrain second, the rest in their order of appearance."""
    methods = list(dict.fromkeys(methods))
    rank = {"original": 0, "retrain": 1}
    return sorted(methods, key=lambda m: (rank.get(m, 2), methods.index(m)))


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per method: mean and std (ddof = 0) of every metric over forget classes × seeds, run counts, the
    dominant reading, and for ``INTERVAL_METRICS`` the number of values ``<col>_n`` and the 95 % t half-width
    ``<col>_ci95`` (NaN for n < 2)."""
    if df.empty:
        return pd.DataFrame()
    ok = df[df["status"] == "ok"]
    interval_cols = {c for c, _ in INTERVAL_METRICS}
    rows = []
    for method in _method_order(df["method"]):
        group = df[df["method"] == method]
        good = ok[ok["method"] == method]
        row: dict = {"method": method, "runs": len(group), "failed": int((group["status"] != "ok").sum()),
                     "dominant_reading": dominant_reading(good)}
        for col, _ in METRICS:
            values = _numeric(good, col).dropna()
            row[f"{col}_mean"] = values.mean() if len(values) else float("nan")
            row[f"{col}_std"] = values.std(ddof=0) if len(values) > 1 else 0.0 if len(values) else float("nan")
            if col in interval_cols:
                interval = t_interval(values)
                row[f"{col}_n"] = interval.n
                row[f"{col}_ci95"] = interval.half_width
        rows.append(row)
    return pd.DataFrame(rows)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: float, col: str, signed: bool = False) -> str:
    """A value of ``col`` as displayed: rates in %, KID with 3 significant digits (it spans orders of magnitude,
    from ≈ 0 for a faithful model to 10⁹ for noise), memory in whole MiB, everything else with 2 decimals."""
    sign = "+" if signed else ""
    if col in PERCENT:
        return f"{100 * value:{sign}.1f}"
    if col in KID_COLUMNS:
        return f"{value:{sign}.3g}"
    if col == "peak_memory_mb":
        return f"{value:{sign}.0f}"
    return f"{value:{sign}.2f}"


def _unit(col: str) -> str:
    return " %" if col in PERCENT else ""


def _cell(mean: float, std: float, col: str) -> str:
    if _is_missing(mean):
        return MISSING
    return f"{_number(mean, col)} ± {_number(std, col)}{_unit(col)}"


def _runs(r: dict) -> str:
    return f"{r['runs']}" + (f" ({r['failed']} failed)" if r["failed"] else "")


def main_tables(table: pd.DataFrame) -> list[tuple[str, str]]:
    """The two main tables of an aggregated ``table`` as (title, Markdown table): "Forgetting" and "Retained quality
    and cost"."""
    records = table.to_dict("records")

    def cells(r: dict, metrics: list) -> list[str]:
        return [_cell(r.get(f"{c}_mean"), r.get(f"{c}_std"), c) for c, _ in metrics]

    forget_headers = ["method", "runs", *(h for _, h in FORGETTING[:2]), "dominant reading",
                      *(h for _, h in FORGETTING[2:])]
    forget_rows = []
    for r in records:
        values = cells(r, FORGETTING)
        forget_rows.append([r["method"], _runs(r), *values[:2], r.get("dominant_reading", MISSING), *values[2:]])
    quality_headers = ["method", "runs", *(h for _, h in QUALITY_COST)]
    quality_rows = [[r["method"], _runs(r), *cells(r, QUALITY_COST)] for r in records]
    return [(MAIN_TITLES[0], markdown_table(forget_headers, forget_rows)),
            (MAIN_TITLES[1], markdown_table(quality_headers, quality_rows))]


def to_markdown(table: pd.DataFrame) -> str:
    """The two main tables ("Forgetting", "Retained quality and cost"), each under a ``##`` heading."""
    return "\n\n".join(f"## {title}\n\n{body}" for title, body in main_tables(table))


def measured_on(hardware: pd.Series) -> str:
    """The distinct hardware labels of the runs, sorted and comma-separated; "not recorded" if there is none."""
    return ", ".join(sorted({str(h) for h in hardware.fillna("") if h})) or "not recorded"


def _interval_cell(mean: float, half_width: float, n: int, col: str, runs_ok: int) -> str:
    if n == 0 or _is_missing(mean):
        return MISSING
    if n < 2:
        return "n = 1: no interval"
    text = f"{_number(mean, col)} ± {_number(half_width, col)}{_unit(col)}"
    return text + (f" (n = {n})" if n != runs_ok else "")


def intervals_markdown(table: pd.DataFrame) -> str:
    """The 95 % interval of the mean per method for ``INTERVAL_METRICS``, with its explanation."""
    rows = []
    for r in table.to_dict("records"):
        runs_ok = int(r["runs"] - r["failed"])
        rows.append([r["method"], str(runs_ok),
                     *(_interval_cell(r.get(f"{c}_mean"), r.get(f"{c}_ci95"), int(r.get(f"{c}_n", 0) or 0), c,
                                      runs_ok) for c, _ in INTERVAL_METRICS)])
    intro = ("Mean ± t₀.₉₇₅,ₙ₋₁ · s / √n over the n finished runs of each method (one run = one forget class × one "
             "seed of this plan; s = sample std, ddof = 1). The interval is over forget classes and seeds: it says "
             "how well n runs pin down the method's mean, not the spread of single runs. With n = 1 there is no "
             "interval; \"(n = k)\" marks a metric that only k runs recorded.")
    headers = ["method", "n", *(h for _, h in INTERVAL_METRICS)]
    return f"## {INTERVALS_TITLE}\n\n{intro}\n\n" + markdown_table(headers, rows)


def paired_differences(df: pd.DataFrame, metrics: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """For every pair (A, B) of methods other than "original" (A before B in leaderboard order) and every metric:
    the mean of A − B over the finished runs they share a (forget class, seed) with, its 95 % t interval and
    whether the interval excludes 0 (``significant``; NaN when n < 2). Raw units (rates as fractions)."""
    columns = ["a", "b", "metric", "n", "mean_diff", "ci_low", "ci_high", "half_width", "significant"]
    metrics = metrics if metrics is not None else PAIRED_METRICS
    if df.empty or not set(PAIR_KEY) <= set(df.columns):
        return pd.DataFrame(columns=columns)
    ok = df[df["status"] == "ok"]
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
                rows.append({"a": a, "b": b, "metric": col, "n": diff.n, "mean_diff": diff.mean,
                             "ci_low": diff.interval.low, "ci_high": diff.interval.high,
                             "half_width": diff.interval.half_width,
                             "significant": float("nan") if diff.significant is None else diff.significant})
    return pd.DataFrame(rows, columns=columns)


def _pair_cell(row: dict) -> str:
    if row["n"] == 0 or _is_missing(row["mean_diff"]):
        return MISSING
    if row["n"] < 2:
        return "n < 2"
    col = row["metric"]
    star = " *" if not _is_missing(row["significant"]) and bool(row["significant"]) else ""
    return (f"{_number(row['mean_diff'], col, True)} [{_number(row['ci_low'], col, True)}, "
            f"{_number(row['ci_high'], col, True)}]{star}")


def pairs_markdown(pairs: pd.DataFrame, metrics: list[tuple[str, str]] | None = None) -> str:
    """``paired_differences`` as one Markdown row per pair (A, B), one cell per metric, with its explanation."""
    metrics = metrics if metrics is not None else PAIRED_METRICS
    intro = ("A − B on the runs both methods have for the same forget class and seed (n pairs): mean difference "
             "[95 % interval] = d̄ ± t₀.₉₇₅,ₙ₋₁ · s_d / √n, s_d = sample std of the differences. * = the interval "
             "excludes 0 (the difference is larger than its spread over forget classes and seeds); \"n < 2\" = one "
             "pair only, no test. Rates in percentage points (pp); \"original\" is left out. Also in "
             "`leaderboard_pairs.csv` (raw units).")
    headers = ["A", "B", "n", *(h for _, h in metrics)]
    rows = []
    if len(pairs):
        for (a, b), group in pairs.groupby(["a", "b"], sort=False):
            by_metric = {r["metric"]: r for r in group.to_dict("records")}
            n = max(int(r["n"]) for r in by_metric.values())
            cells = []
            for col, _ in metrics:
                r = by_metric.get(col)
                cell = MISSING if r is None else _pair_cell(r)
                if r is not None and 2 <= r["n"] != n:
                    cell += f" (n = {int(r['n'])})"
                cells.append(cell)
            rows.append([a, b, str(n), *cells])
    body = markdown_table(headers, rows) if rows else "Fewer than two methods besides \"original\": no pairs."
    return f"## {PAIRS_TITLE}\n\n{intro}\n\n{body}"


def _plot_axes(table: pd.DataFrame) -> tuple[str, str] | None:
    """(x, y) columns of the plot: x = recognised rate (else UA, plotted as 1 − UA), y = KID (else FID)."""
    def present(col: str) -> bool:
        return f"{col}_mean" in table and table[f"{col}_mean"].notna().any()

    x = "recognised_rate" if present("recognised_rate") else "ua" if present("ua") else None
    y = "kid" if present("kid") else "fid" if present("fid") else None
    return (x, y) if x and y else None


def plot(table: pd.DataFrame, path: Path) -> None:
    """Forgetting vs retained quality, one labelled point per method: x = recognised rate of the forget class (%;
    1 − UA when no record has one), y = KID on the retained classes (FID when no record has KID; log scale when
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
    ax.set_ylabel("KID on retained classes ↓" if y_col == "kid" else "FID on retained classes ↓")
    positive = y[y > 0]
    if len(positive) and positive.max() / positive.min() > 100:  # collapsed models score orders of magnitude higher
        if (y > 0).all():
            ax.set_yscale("log")
        else:  # the unbiased KID can be slightly negative
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
    hardware = measured_on(df["hardware"])
    text = (f"# Leaderboard: {df['profile'].iloc[0]}\n\n{protocol}\n\nMeasured on: {hardware}.\n\n"
            f"{READING_GUIDE}{rte_note}\n\n{markdown}\n\n{intervals}\n\n{pairs_markdown(pairs)}\n"
            + (f"\nFailed runs:{notes}\n" if notes else "") + skipped_note.lstrip("\n")
            + ("\n" if skipped_note else ""))
    write_text_atomic(out_dir / "leaderboard.md", text)
    if _plot_axes(table) is not None:
        plot(table, out_dir / "leaderboard.png")
    write_json_atomic(out_dir / "leaderboard.json", table.to_dict("records"))
    reference = reference_table(reference_dir) if reference_dir else ""
    print("\n" + protocol + f"\n\nYours ({hardware}):\n\n" + markdown + "\n\n" + intervals
          + f"\n\nPaired differences between methods: {out_dir / 'leaderboard.md'} and "
          f"{out_dir / 'leaderboard_pairs.csv'}." + (f"\n\nFailed runs:{notes}" if notes else "")
          + skipped_note + (f"\n\n{reference}" if reference else "") + "\n", file=stream, flush=True)
    return table


def reference_table(reference_dir: str | Path) -> str:
    """The committed reference leaderboard of a profile, or "" if there is none: the hardware its runs were measured
    on and its two main tables, rebuilt from its ``leaderboard.json`` (the aggregated table as written) and the
    ``hardware`` column of its ``runs.csv``, under one line saying what made it and whether it is validated for
    the current code (:func:`~unlearnbench.orchestration.reference.reference_status`). Interval and
    paired-difference tables are left out."""
    reference_dir = Path(reference_dir)
    path = reference_dir / "leaderboard.json"
    if not path.is_file():
        return ""
    table = pd.DataFrame(json.loads(path.read_text()))
    runs = reference_dir / "runs.csv"
    hardware = pd.read_csv(runs, usecols=lambda c: c == "hardware") if runs.is_file() else pd.DataFrame()
    measured = measured_on(hardware["hardware"] if "hardware" in hardware else pd.Series(dtype=object))
    parts = [f"{title}:\n{body}" for title, body in main_tables(table)]
    return (f"Reference ({reference_dir}, {measured}):\n{reference_status(reference_dir)}.\n\n"
            + "\n\n".join(parts))
