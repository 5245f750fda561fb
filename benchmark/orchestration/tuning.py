"""Equal-budget tuning on a validation forget class (METHODS.md: choose a profile's defaults by measurement on a
validation class, not the reported one, and give every method the same tuning budget).

Every method gets the same grid of learning rates (and nothing else), the profile's step budget, and is scored by
the one evaluator on ``validation_class``. The rule that picks each method's learning rate is fixed in advance:
among settings that forget (the noise-aware reader recognises at most ``RECOGNISED_TARGET`` of the forget-class
samples as that class), the highest retained accuracy; if none forgets, the lowest recognised rate (ties: higher
retained accuracy). Remaining ties go to the smaller learning rate (the smaller change). UA is not used: pure noise
scores UA 100 % (issue 9), so a UA rule picks collapsed models. Records without a recognised rate (made before the
noise-aware reader) fall back to 1 − UA. Records go to ``<output_dir>/<profile>-tuning/lr<value>/`` (resumable like
any run) and the summary to ``<output_dir>/<profile>-tuning/summary.{md,csv}``, with ``tradeoff.png`` beside it: one
curve per method through its learning rates, retained accuracy against the recognised rate of the forget class.
``tradeoff_from_records`` rebuilds the grid from the stored records, so the summary and figure can be redrawn
without rerunning anything.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from unlearnbench.foundation.cache import atomic_path, write_text_atomic
from unlearnbench.foundation.report_files import markdown_table, pyplot, save_figure
from unlearnbench.orchestration.records import load_record

RECOGNISED_TARGET = 0.05
RECORD_FIELDS = [  # copied from each run record into its grid row (NaN where a record lacks one)
    "forget_class", "seed", "ua", "forget_entropy", "retain_accuracy", "fid",
    "recognised_rate", "unrecognisable_rate", "kid", "relearn_max",
]
OPTIONAL = [  # summary.md columns shown only when some row has a value (older records lack them)
    ("recognised_rate", "recognised ↓", "percent"),
    ("unrecognisable_rate", "unrecognisable", "percent"),
    ("kid", "KID", "kid"),
    ("relearn_max", "relearned (worst) ↓", "percent"),
]


def tuning_dir(output_dir: str, profile: str) -> Path:
    return Path(output_dir) / f"{profile}-tuning"


def grid_row(record: dict, lr: float) -> dict:
    """One grid row from a run record at learning rate ``lr``."""
    row = {"method": record["method"], "lr": float(lr), "status": record.get("status")}
    row.update({field: record.get(field, float("nan")) for field in RECORD_FIELDS})
    row["seconds"] = record.get("total_seconds", float("nan"))
    return row


def run_grid(profile: str, methods: list[str], lrs: list[str], validation_class: int, output_dir: str = "results",
             overrides: list[str] | None = None) -> pd.DataFrame:
    """Run every method at every learning rate on the validation class; returns one row per (method, lr, seed).
    A ``methods`` entry may be one of the profile's variants (e.g. ``sa_lam1``): its options stay, its lr is the
    grid's."""
    from unlearnbench.foundation.config import load_profile
    from unlearnbench.orchestration.runner import BenchmarkRunner

    variants = load_profile(profile, overrides).unlearning.variants
    rows = []
    for lr in lrs:
        args = {m: {"lr": float(lr)} for m in methods if m not in variants}
        tuned = {m: {**spec, "lr": float(lr)} for m, spec in variants.items() if m in methods}
        p = load_profile(profile, [
            *(overrides or []),
            f"unlearning.methods=[{','.join(methods)}]",
            f"unlearning.forget_classes=[{validation_class}]",
            "unlearning.include_original=false",
            f"unlearning.method_args={json.dumps(args)}",
            f"unlearning.variants={json.dumps({**variants, **tuned})}",
            f"runtime.output_dir={tuning_dir(output_dir, profile) / f'lr{lr}'}",
        ])
        rows += [grid_row(r, float(lr)) for r in BenchmarkRunner(p).run()]
    return pd.DataFrame(rows, columns=_grid_columns())


def _grid_columns() -> list[str]:
    return ["method", "lr", "status", *RECORD_FIELDS, "seconds"]


def tradeoff_from_records(tuning_root: Path) -> pd.DataFrame:
    """The grid rebuilt from the stored run records ``<tuning_root>/lr<value>/<profile>/runs/*.json``: finished runs
    only (status "ok"), the learning rate read from the folder name (``lr3e-5`` → 3e-05).

    A runs folder keeps records of earlier settings too; of several records of the same (lr, method, forget class,
    seed) the one that finished last is kept. Folders whose name is not ``lr<number>`` are ignored.
    """
    rows, finished = [], []
    for folder in sorted(Path(tuning_root).glob("lr*")):
        try:
            lr = float(folder.name[2:])
        except ValueError:
            continue
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*/runs/*.json")):
            record = load_record(path)
            if not isinstance(record, dict) or record.get("status") != "ok" or "method" not in record:
                continue
            rows.append(grid_row(record, lr))
            finished.append(str(record.get("finished_at", "")))
    grid = pd.DataFrame(rows, columns=_grid_columns())
    if grid.empty:
        return grid
    grid["_finished"] = finished
    key = ["lr", "method", "forget_class", "seed"]
    grid = (grid.sort_values("_finished", kind="stable")
            .drop_duplicates(subset=key, keep="last")  # NaN keys compare equal here: a record without them is one
            .drop(columns="_finished"))
    return grid.sort_values(["method", "lr"], kind="stable").reset_index(drop=True)


def forgetting_score(grid: pd.DataFrame) -> pd.Series:
    """The recognised rate of the forget class (lower = forgotten); 1 − UA where a record has none."""
    recognised = pd.to_numeric(grid.get("recognised_rate", pd.Series(float("nan"), index=grid.index)),
                               errors="coerce")
    return recognised.fillna(1 - pd.to_numeric(grid["ua"], errors="coerce"))


def select(grid: pd.DataFrame, target: float = RECOGNISED_TARGET) -> pd.DataFrame:
    """The chosen row per method under the fixed rule (see the module docstring)."""
    chosen = []
    ok = grid[grid["status"] == "ok"].copy()
    ok["_score"] = forgetting_score(ok)
    ok["_retained"] = pd.to_numeric(ok["retain_accuracy"], errors="coerce").round(9)  # float-order noise is a tie
    for _, g in ok.groupby("method", sort=False):
        forgets = g[g["_score"] <= target + 1e-9]
        pick = (forgets.sort_values(["_retained", "lr"], ascending=[False, True], kind="mergesort")
                if len(forgets) else
                g.sort_values(["_score", "_retained", "lr"], ascending=[True, False, True], kind="mergesort")
                ).iloc[0]
        chosen.append(pick.drop(["_score", "_retained"]))
    return pd.DataFrame(chosen)


def _has(grid: pd.DataFrame, col: str) -> bool:
    return col in grid and pd.to_numeric(grid[col], errors="coerce").notna().any()


def _fmt(value, kind: str) -> str:
    value = pd.to_numeric(value, errors="coerce")
    if value is None or pd.isna(value):
        return "—"
    if kind == "percent":
        return f"{value:.1%}"
    if kind == "kid":
        return f"{value:.3g}"
    if kind == "seconds":
        return f"{value:.1f}"
    return f"{value:.2f}"


def _tradeoff_points(grid: pd.DataFrame) -> tuple[pd.DataFrame, str, int]:
    """Per (method, lr): mean retained accuracy and forget-class score (%), sorted by lr; the y label; and the
    number of finished rows left out for lacking the score."""
    ok = grid[grid["status"] == "ok"].copy() if "status" in grid else grid.copy()
    ok["x"] = 100 * pd.to_numeric(ok["retain_accuracy"], errors="coerce")
    ok["y"] = 100 * forgetting_score(ok)  # the score the tuning rule selects on
    label = ("forget class recognised (%) ↓" if _has(ok, "recognised_rate")
             else "forget class classified as itself, 1 − UA (%) ↓")  # older records
    usable = ok.dropna(subset=["x", "y"])
    points = (usable.groupby(["method", "lr"], sort=False)[["x", "y"]].mean().reset_index()
              .sort_values(["method", "lr"], kind="stable"))
    return points, label, len(ok) - len(usable)


def plot_tradeoff(grid: pd.DataFrame, path: Path) -> None:
    """One figure, one curve per method through its learning rates (sorted by lr): x = retained accuracy (%), y =
    recognised rate of the forget class (%; 1 − UA when no row has one), each point labelled with its lr (means over
    seeds where a (method, lr) has several rows), the point the tuning rule chose marked with a star."""
    points, y_label, left_out = _tradeoff_points(grid)
    chosen = select(grid) if len(grid) else pd.DataFrame()
    chosen_keys = {(c.method, float(c.lr)) for c in chosen.itertuples()}

    fig, ax = pyplot().subplots(figsize=(6.8, 4.8), dpi=120)
    starred = False
    offsets = [(4, 4), (4, -10), (-18, 8), (-18, -12)]  # staggered: the lrs of a collapsed model share one point
    for method, curve in points.groupby("method", sort=False):
        line, = ax.plot(curve["x"], curve["y"], marker="o", ms=4, lw=1.2, label=method)
        for i, r in enumerate(curve.itertuples()):
            ax.annotate(f"{r.lr:g}", (r.x, r.y), textcoords="offset points", xytext=offsets[i % len(offsets)],
                        fontsize=7, color=line.get_color())
            if (method, float(r.lr)) in chosen_keys:
                ax.scatter([r.x], [r.y], marker="*", s=220, color=line.get_color(), edgecolor="black", zorder=3)
                starred = True
    if starred:
        ax.scatter([], [], marker="*", s=120, color="white", edgecolor="black", label="chosen by the tuning rule")
    ax.set_xlabel("retained accuracy (%) ↑")
    ax.set_ylabel(y_label)
    title = "Tuning trade-off per learning rate (labels = lr)"
    if left_out:
        title += f"; {left_out} run(s) without the score left out"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if len(points):
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def write_summary(grid: pd.DataFrame, out: Path, profile: str, validation_class: int) -> pd.DataFrame:
    """``summary.{md,csv}`` and ``tradeoff.png`` under ``out``; returns the chosen row per method."""
    chosen = select(grid)
    grid = grid.sort_values(["method", "lr"], kind="stable").reset_index(drop=True)
    grid["chosen"] = [any((c.method == r.method) and (c.lr == r.lr) for c in chosen.itertuples())
                      for r in grid.itertuples()]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "summary.csv") as tmp:
        grid.to_csv(tmp, index=False)
    spec = {col: (col, header, kind) for col, header, kind in OPTIONAL if _has(grid, col)}
    columns = [spec[c] for c in ("recognised_rate", "unrecognisable_rate") if c in spec]  # read first
    columns += [("ua", "UA", "percent"), ("forget_entropy", "H (forget)", "plain"),
                ("retain_accuracy", "retained acc", "percent"), ("fid", "FID", "plain")]
    columns += [spec[c] for c in ("kid", "relearn_max") if c in spec]
    columns.append(("seconds", "time (s)", "seconds"))
    headers = ["method", "lr", *(h for _, h, _ in columns), "chosen"]
    rows = [[r["method"], f"{r['lr']:g}", *(_fmt(r.get(col), kind) for col, _, kind in columns),
             "**yes**" if r["chosen"] else ""] for r in grid.to_dict("records")]
    lines = [f"# Tuning on validation forget class {validation_class} (profile `{profile}`)", "",
             f"Same grid for every method (learning rate only), the profile's step budget. Rule: among settings whose "
             f"recognised rate is ≤ {RECOGNISED_TARGET:.0%}, the highest retained accuracy; else the lowest recognised "
             "rate (UA is not used: noise scores UA 100 %). `tradeoff.png`: retained "
             "accuracy against the recognised rate of the forget class per learning rate (star = chosen).", "",
             markdown_table(headers, rows)]
    picked = json.dumps({c.method: {"lr": c.lr} for c in chosen.itertuples()})
    lines += ["", f"Chosen `unlearning.method_args`: `{picked}`"]
    write_text_atomic(out / "summary.md", "\n".join(lines) + "\n")
    if _has(grid[grid["status"] == "ok"], "retain_accuracy"):
        plot_tradeoff(grid, out / "tradeoff.png")
    print("\n".join(lines), file=sys.stdout)
    return chosen
