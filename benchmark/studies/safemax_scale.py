"""The SAFEMax scale study's own report (issue 20; ``safemax-scale.yaml`` beside this file is its spec, and
``results/studies/safemax-scale/README.md`` states the pre-registered hypotheses H5, H1′, H6, the transition and
the question's success rule, which this module implements as written there).

Every number is a mean over a point's forget classes. The *published grid* G is every arm that is SAFEMax with at
most a learning rate changed (all weights, λ = 1, β = 0); its lr is the arm's, else the profile's. R(point) is the
retained accuracy of G's best-forgetting setting (recognised ≤ ``RECOGNISED_TARGET``; ties: lower recognised, then
smaller lr), or NaN when none forgets.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from unlearnbench.foundation.report_files import markdown_table, pyplot, save_figure
from unlearnbench.orchestration.tuning import RECOGNISED_TARGET

if TYPE_CHECKING:
    from unlearnbench.orchestration.study import StudySpec

RISE = 0.05  # a step "rises" when R grows by at least 5 pp
KEEPS = 0.80  # "keeps the retained classes": R >= 80 %
FAILS = 0.30  # refutation: R < 30 % (or none forgets) everywhere
LOST = 0.10  # "retention is lost": more than 10 pp below the original's retained accuracy
EXCESS = 0.10  # "no excess relearning": mean largest lead over Retrain's curve <= 10 pp
H5_POINTS = ("mnist16-0.27M-2k", "mnist16-0.27M-8k", "mnist16-0.27M-32k")
H1_POINTS = ("mnist16-0.27M-2k", "mnist16-1.06M-2k", "mnist16-4.24M-2k")
H6_POINTS = ("fashion16-0.27M-2k", "mnist28-0.27M-2k", "fashion28-0.27M-2k")
G_ENDS = (3e-7, 3e-5)  # the pre-registered grid's smallest and largest lr; an arm beyond them is the rules' one
# half-decade extension (1e-7 or 1e-4), added to the point whose G did not bracket the transition


def grid_lrs(study: StudySpec) -> dict[str, float]:
    """The published grid G: arm → lr, for every SAFEMax arm that changes nothing but the learning rate (an arm
    without its own lr runs at the study profile's SAFEMax lr, read from that profile)."""
    from unlearnbench.foundation.config import load_profile

    default = float(load_profile(study.profile).unlearning.method_args.get("safemax", {}).get("lr", float("nan")))
    return {arm: float(options.get("lr", default)) for arm, options in study.arms.items()
            if options.get("method") == "safemax" and set(options) <= {"method", "lr"}}


def point_table(study: StudySpec, table: pd.DataFrame) -> pd.DataFrame:
    """One row per point: R and its arm, the transition, SalUn's and the original's retained accuracy, and the
    question's answer."""
    lrs = grid_lrs(study)
    rows = []
    for size, frame in table.groupby("size", sort=False):
        means = frame.groupby("arm")[["recognised_rate", "retain_accuracy", "relearn_excess"]].mean()
        collapsed = frame.groupby("arm")["collapsed"].apply(lambda s: bool(s.fillna(False).astype(bool).any()))
        grid = means[means.index.isin(list(lrs))].assign(lr=lambda g: [lrs[a] for a in g.index]).sort_values("lr")
        forgets = grid[grid["recognised_rate"] <= RECOGNISED_TARGET]
        best = forgets.sort_values(["retain_accuracy", "recognised_rate", "lr"],
                                   ascending=[False, True, True]).index[:1]
        original = means["retain_accuracy"].get("original", float("nan"))
        lost = grid[grid["retain_accuracy"] < original - LOST]
        has_retrain = "retrain" in means.index
        success = forgets[(forgets["retain_accuracy"] >= KEEPS) & ~collapsed.reindex(forgets.index).fillna(False)]
        if has_retrain:
            success = success[success["relearn_excess"] <= EXCESS]
        rows.append({
            "point": size, "parameters": int(frame["parameters"].iloc[0]),
            "best_arm": best[0] if len(best) else "none forgets",
            "R": float(grid.loc[best[0], "retain_accuracy"]) if len(best) else float("nan"),
            "forgetting_starts": float(forgets["lr"].min()) if len(forgets) else float("nan"),
            "retention_lost": float(lost["lr"].min()) if len(lost) else float("nan"),
            "grid": (float(grid["lr"].min()), float(grid["lr"].max())) if len(grid) else None,
            "salun_retained": means["retain_accuracy"].get("salun", float("nan")),
            "original_retained": original, "retrain": has_retrain,
            "answer": ("yes" if has_retrain else "yes, without a Retrain reference") if len(success) else "no",
            "answer_arms": ", ".join(success.index),
        })
    return pd.DataFrame(rows)


def window_text(row: pd.Series) -> str:
    """Whether a point has a window (forgetting starts at a smaller lr than retention is lost), or what G misses."""
    start, lost = row["forgetting_starts"], row["retention_lost"]
    smallest, largest = row["grid"] if row["grid"] is not None else (float("nan"), float("nan"))
    if math.isnan(start):
        if largest > G_ENDS[1]:
            return f"no forgetting in G extended once upwards (to {largest:g})"
        return "no forgetting in G: extend upwards"
    if lost <= smallest:
        if smallest < G_ENDS[0]:
            return f"no window (forgets at {start:g}; retention lost already at {lost:g}, G extended once downwards)"
        return "retention lost at G's smallest lr: extend downwards"
    extension = (f"G extended once downwards to {smallest:g}" if smallest < G_ENDS[0] else
                 f"G extended once upwards to {largest:g}" if largest > G_ENDS[1] else "")
    if math.isnan(lost):
        return f"window from {start:g} (retention never lost in G" + (f"; {extension})" if extension else ")")
    if start < lost:
        return f"window [{start:g}, {lost:g})" + (f"; {extension}" if extension else "")
    return f"no window (forgets at {start:g}, lost at {lost:g}" + (f", {extension})" if extension else ")")


def _r(points: pd.DataFrame, label: str) -> float:
    row = points[points["point"] == label]
    return float(row["R"].iloc[0]) if len(row) else float("nan")


def verdict_rises(points: pd.DataFrame, labels: tuple[str, ...], last_ok: bool) -> str:
    """H5 and H1′: confirmed if R rises at each step and ``last_ok``; refuted if R < 30 % (or none forgets) at every
    point; not settled otherwise; "not run" until every point has records."""
    if not set(labels) <= set(points["point"]):
        return "not run yet (" + ", ".join(label for label in labels if label not in set(points["point"])) + ")"
    r = [_r(points, label) for label in labels]
    if all(math.isnan(v) or v < FAILS for v in r):
        return "refuted"
    rises = all(not math.isnan(a) and not math.isnan(b) and b - a >= RISE for a, b in itertools.pairwise(r))
    return "confirmed" if rises and last_ok else "not settled"


def verdicts(points: pd.DataFrame) -> dict[str, str]:
    """The pre-registered verdicts of H5, H1′ and H6 from the point table."""
    largest = points[points["point"] == H1_POINTS[-1]]
    near_salun = bool(len(largest)) and float(largest["R"].iloc[0]) >= float(largest["salun_retained"].iloc[0]) - 0.10
    h6 = "not run yet" if not set(H6_POINTS) & set(points["point"]) else (
        "confirmed" if any(_r(points, p) >= KEEPS for p in H6_POINTS)
        else "refuted" if set(H6_POINTS) <= set(points["point"]) and all(
            math.isnan(_r(points, p)) or _r(points, p) < FAILS for p in H6_POINTS)
        else "not settled")
    return {"H5": verdict_rises(points, H5_POINTS, _r(points, H5_POINTS[-1]) >= KEEPS),
            "H1′": verdict_rises(points, H1_POINTS, near_salun), "H6": h6}


def pct(value: float) -> str:
    """A share as a percentage, "—" for NaN (no setting)."""
    return "—" if math.isnan(value) else f"{value:.1%}"


CONTEXT_ARMS = {"original": "original", "retrain": "Retrain", "safemax_emb_lr3e-2": "embedding row, lr 3e-2",
                "safemax_beta10": "β = 10", "salun": "SalUn"}  # the README's names of the arms outside G


def lr_text(lr: float) -> str:
    """A learning rate as the README writes it: ``1e-5``, ``3e-7``."""
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def arm_label(study: StudySpec, arm: str, lrs: dict[str, float]) -> str:
    """The README's name of an arm: "G, lr 3e-7", "G, lr 1e-5 (the default)", "G, lr 1e-7 (extension)", "SalUn"."""
    if arm not in lrs:
        return CONTEXT_ARMS.get(arm, arm)
    lr = lrs[arm]
    note = (" (the default)" if "lr" not in study.arms[arm] else
            " (extension)" if not G_ENDS[0] <= lr <= G_ENDS[1] else "")
    return f"G, lr {lr_text(lr)}{note}"


def percent_cell(share: float, unit: str = " %", signed: bool = False) -> str:
    """A share as the README's tables write it: "0 %", "98.7 %", "100 %"; signed: "+2.0 pp", "−3.1 pp"."""
    value = round(100 * share, 1)
    text = "0" if value == 0 else "100" if value == 100 else f"{abs(value) if signed else value:.1f}"
    sign = ("+" if value > 0 else "−") if signed and value != 0 else ""
    return sign + text + unit


def arm_tables(study: StudySpec, table: pd.DataFrame) -> str:
    """Per point, the README's table of every arm, means over its forget classes: recognised and retained accuracy
    over all runs; the attacks (the largest relearned share, the largest lead over Retrain's relearning curve,
    inversion) over the runs that did not collapse, as the leaderboard reads them; how many runs collapsed."""
    lrs = grid_lrs(study)
    headers = ["arm", "recognised", "retained acc", "relearned max", "lead over Retrain's relearning", "inversion",
               "collapsed"]
    parts = []
    for size, frame in table.groupby("size", sort=False):
        collapsed = frame["collapsed"].fillna(False).astype(bool)
        rows = []
        for arm in [a for a in ("original", *study.arms) if a in set(frame["arm"])]:
            runs = frame[frame["arm"] == arm]
            kept = runs[~collapsed[runs.index]]
            cells = [percent_cell(runs["recognised_rate"].mean()), percent_cell(runs["retain_accuracy"].mean())]
            if kept.empty:
                cells += ["(collapsed)", "", ""]
            else:
                excess = kept["relearn_excess"].mean()
                lead = ("(reference)" if arm == "retrain" else "(no Retrain)" if math.isnan(excess)
                        else percent_cell(excess, " pp", signed=True))
                cells += [percent_cell(kept["relearn_max"].mean()), lead,
                          percent_cell(kept["inversion_recognised"].mean())]
            rows.append([arm_label(study, arm, lrs), *cells, f"{int(collapsed[runs.index].sum())}/{len(runs)}"])
        parts += [f"### {size}", "", markdown_table(headers, rows), ""]
    return "\n".join(parts).rstrip("\n")


def write_report(study: StudySpec, table: pd.DataFrame) -> str:
    """``safemax-scale.png`` under the study's output folder, and ``summary.md``'s sections of the pre-registered
    rules and of every arm per point (:func:`arm_tables`)."""
    points = point_table(study, table)
    plot_points(points, Path(study.output_dir) / "safemax-scale.png")
    rows = [[p["point"], f"{p['parameters'] / 1e6:.2f}M", p["best_arm"], pct(p["R"]), window_text(p),
             pct(p["salun_retained"]), pct(p["original_retained"]), p["answer"] + (f" ({p['answer_arms']})"
                                                                                    if p["answer_arms"] else "")]
            for _, p in points.iterrows()]
    headers = ["point", "parameters", "best-forgetting setting of G", "R (its retained acc)", "transition",
               "SalUn retained", "original retained", "≥ 80 % kept, ≤ 5 % recognised, no excess relearning?"]
    lines = [f"## Pre-registered rules (README): R per point, transition, the question ({RECOGNISED_TARGET:.0%} "
             "recognised, 80 % retained, 10 pp relearning excess)", "", markdown_table(headers, rows), "",
             "Verdicts: " + "; ".join(f"**{h}** {v}" for h, v in verdicts(points).items()) + ".", "",
             "## Every arm per point (the README's tables): means over forget classes; the attack columns over the "
             "runs that did not collapse", "", arm_tables(study, table)]
    return "\n".join(lines)


def plot_points(points: pd.DataFrame, path: Path) -> None:
    """R per point (bars), with SalUn's and the original's retained accuracy and the 80 % line."""
    if points.empty:
        return
    fig, ax = pyplot().subplots(figsize=(max(6, 1.2 * len(points)), 4.2), dpi=110)
    x = range(len(points))
    ax.bar(x, points["R"].fillna(0), color="black", alpha=0.75, label="R: SAFEMax as published, best forgetting lr")
    ax.plot(x, points["salun_retained"], "m^", ms=9, label="SalUn")
    ax.plot(x, points["original_retained"], "o", color="grey", ms=8, label="original")
    for i, r in enumerate(points["R"]):
        if math.isnan(r):
            ax.text(i, 0.02, "none\nforgets", ha="center", fontsize=7)
    ax.axhline(KEEPS, color="grey", lw=0.8, ls=":", label=f"{KEEPS:.0%} retained (the question's bar)")
    ax.set_xticks(list(x), points["point"], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("retained accuracy (mean over forget classes)")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False)  # above: no data hidden
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    save_figure(fig, path)
