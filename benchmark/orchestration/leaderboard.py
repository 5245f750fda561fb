"""The leaderboard: pandas aggregates run records over forget classes and seeds into one row per method.

Columns (mean ± std over forget classes × seeds): UA ↑, forget-class entropy H, P(forget), retained accuracy ↑,
FID ↓, unlearning time (s; prior work such as SalUn's mask included, and shown separately), RTE = t_retrain /
t_method ↑, peak memory. Written as Markdown, CSV and a plot (FID vs UA, marker size = time), and printed.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from benchmark.foundation.cache import atomic_path, write_json_atomic, write_text_atomic
from metrics.cost import run_time_efficiency

METRICS = [  # (record column, leaderboard header)
    ("ua", "UA ↑"),
    ("forget_entropy", "H (forget)"),
    ("forget_prob", "P(forget)"),
    ("retain_accuracy", "retained acc ↑"),
    ("fid", "FID ↓"),
    ("prepare_seconds", "prior time (s)"),
    ("total_seconds", "unlearning time (s)"),
    ("rte", "RTE ↑"),
    ("peak_memory_mb", "peak mem (MiB)"),
]
PERCENT = {"ua", "retain_accuracy", "forget_prob"}


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


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per method: mean and std of every metric over forget classes × seeds, plus run counts."""
    if df.empty:
        return pd.DataFrame()
    ok = df[df["status"] == "ok"]
    rows = []
    for method, group in df.groupby("method", sort=False):
        good = ok[ok["method"] == method]
        row: dict = {"method": method, "runs": len(group), "failed": int((group["status"] != "ok").sum())}
        for col, _ in METRICS:
            values = pd.to_numeric(good[col], errors="coerce") if col in good else pd.Series(dtype=float)
            row[f"{col}_mean"] = values.mean()
            row[f"{col}_std"] = values.std(ddof=0) if len(values) > 1 else 0.0 if len(values) else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    order = {"original": 0, "retrain": 1}
    return table.sort_values(by="method", key=lambda s: s.map(lambda m: order.get(m, 2))).reset_index(drop=True)


def _cell(mean: float, std: float, col: str) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    if col in PERCENT:
        return f"{100 * mean:.1f} ± {100 * std:.1f} %"
    if col == "peak_memory_mb":
        return f"{mean:.0f} ± {std:.0f}"
    return f"{mean:.2f} ± {std:.2f}"


def to_markdown(table: pd.DataFrame) -> str:
    headers = ["method", "runs"] + [h for _, h in METRICS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in table.to_dict("records"):
        runs = f"{r['runs']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        cells = [_cell(r[f"{c}_mean"], r[f"{c}_std"], c) for c, _ in METRICS]
        lines.append("| " + " | ".join([r["method"], runs, *cells]) + " |")
    return "\n".join(lines)


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    t = table.dropna(subset=["ua_mean", "fid_mean"])
    times = t["total_seconds_mean"].fillna(0)
    sizes = 40 + 400 * (times / times.max() if times.max() > 0 else times)
    ax.scatter(100 * t["ua_mean"], t["fid_mean"], s=sizes, alpha=0.6)
    for r in t.itertuples():
        ax.annotate(f"{r.method} ({r.total_seconds_mean:.0f} s)", (100 * r.ua_mean, r.fid_mean),
                    textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel("unlearning accuracy UA (%) ↑")
    ax.set_ylabel("FID on retained classes ↓")
    positive = t["fid_mean"][t["fid_mean"] > 0]
    if len(positive) and positive.max() / positive.min() > 100:
        ax.set_yscale("log")  # collapsed models score FIDs orders of magnitude above the rest
    ax.set_title("Forgetting vs retained quality (marker size = unlearning time)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def write_leaderboard(out_dir: str | Path, records: list[dict], protocol: str = "", skipped: int = 0,
                      reference_dir: str | Path | None = None, stream=None) -> pd.DataFrame:
    """Write ``runs.csv``, ``leaderboard.{md,csv,json,png}`` under ``out_dir`` from ``records`` (the current
    plan's only: the caller selects them) and print the table, with the committed reference table beside it.

    ``skipped`` (records of other keys in the same folder) is reported, never averaged in.
    """
    out_dir = Path(out_dir)
    stream = stream or sys.stdout
    df = records_frame(records)
    if df.empty:
        print("no finished runs to put on the leaderboard", file=stream)
        return df
    table = aggregate(df)
    protocol_file = out_dir / "protocol.txt"
    if protocol:  # kept so that `unlearnbench leaderboard` can rebuild the table with its protocol
        write_text_atomic(protocol_file, protocol + "\n")
    elif protocol_file.is_file():
        protocol = protocol_file.read_text().strip()
    with atomic_path(out_dir / "runs.csv") as tmp:
        df.drop(columns=[c for c in ("traceback",) if c in df]).to_csv(tmp, index=False)
    with atomic_path(out_dir / "leaderboard.csv") as tmp:
        table.to_csv(tmp, index=False)
    markdown = to_markdown(table)
    failures = df[df["status"] != "ok"]
    notes = "".join(f"\n- {r.method} (forget {r.forget_class}, seed {r.seed}) FAILED: {r.error}"
                    for r in failures.itertuples())
    rte_note = ("" if (df["method"] == "retrain").any() else
                " RTE is \"—\" because this plan has no Retrain run (RTE is only computed against a Retrain timed on "
                "the same hardware).")
    skipped_note = (f"\n\n{skipped} record(s) of other settings, code or hardware in {out_dir / 'runs'} are not "
                    "shown." if skipped else "")
    hardware = ", ".join(sorted({str(h) for h in df["hardware"] if h})) or "not recorded"
    text = (f"# Leaderboard: {df['profile'].iloc[0]}\n\n{protocol}\n\nMeasured on: {hardware}.\n\n"
            "Mean ± std over forget classes × seeds. UA = 1 − share of forget-class samples classified as the forget "
            "class. RTE = retrain time / method time. Unlearning time includes prior work (e.g. SalUn's mask), also "
            "shown alone. Peak memory: what the method allocates above the shared inputs (README, \"Peak memory\")."
            f"{rte_note}\n\n{markdown}\n" + (f"\nFailed runs:{notes}\n" if notes else "") + skipped_note.lstrip("\n")
            + ("\n" if skipped_note else ""))
    write_text_atomic(out_dir / "leaderboard.md", text)
    if {"ua_mean", "fid_mean"} <= set(table.columns) and table["fid_mean"].notna().any():
        plot(table, out_dir / "leaderboard.png")
    write_json_atomic(out_dir / "leaderboard.json", table.to_dict("records"))
    reference = reference_table(reference_dir) if reference_dir else ""
    print("\n" + protocol + f"\n\nYours ({hardware}):\n\n" + markdown + (f"\n\nFailed runs:{notes}" if notes else "")
          + skipped_note + (f"\n\n{reference}" if reference else "") + "\n", file=stream, flush=True)
    return table


def reference_table(reference_dir: str | Path) -> str:
    """The committed reference leaderboard of a profile (its hardware line and table), or "" if there is none."""
    path = Path(reference_dir) / "leaderboard.md"
    if not path.is_file():
        return ""
    lines = path.read_text().splitlines()
    measured = next((line for line in lines if line.startswith("Measured on:")), "Measured on: not recorded.")
    table = [line for line in lines if line.startswith("|")]
    return f"Reference ({path.parent}, {measured[len('Measured on: '):].rstrip('.')}):\n\n" + "\n".join(table)
