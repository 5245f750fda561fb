"""The capacity and timestep study's own report (issue 10; ``capacity.yaml`` beside this file is its spec, and
``results/studies/capacity-study/README.md`` states its pre-registered hypotheses H1–H4 and how each is judged).

:func:`write_report` is the hook :mod:`unlearnbench.orchestration.study` calls after every size: it draws
``capacity.png`` (:func:`plot_capacity`) and returns the pre-registered decision rule's table
(:func:`decision_table`) for ``summary.md``. The rule: per size, among SAFEMax arms whose mean recognised rate over
the size's forget classes is at most ``RECOGNISED_TARGET`` (tuning's "forgets"), the one with the highest mean
retained accuracy, beside SalUn's and the original's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from unlearnbench.foundation.report_files import markdown_table, pyplot, save_figure
from unlearnbench.orchestration.tuning import RECOGNISED_TARGET

if TYPE_CHECKING:
    from unlearnbench.orchestration.study import StudySpec

# The SAFEMax paper's point (CIFAR-10, 35.7M-parameter DDPM, mean over 10 forget classes): retained-class FID of
# SAFEMax 16.74 vs SalUn 16.76 (METHODS.md). Drawn on the "relative to SalUn" panel as a reference, not as data.
PAPER_PARAMETERS = 35.7e6
PAPER_RETAINED_RATIO = 16.74 / 16.76


def write_report(study: StudySpec, table: pd.DataFrame) -> str:
    """``capacity.png`` under the study's output folder, and the decision rule's section of ``summary.md``."""
    plot_capacity(table, Path(study.output_dir) / "capacity.png")
    rows = [[d["size"], f"{d['parameters'] / 1e6:.2f}M", d["best_forgetting_safemax_arm"],
             f"{d['its_retained_accuracy']:.1%}", f"{d['safemax_arms_that_forget']}/{d['safemax_arms']}",
             f"{d['salun_retained_accuracy']:.1%} ({d['salun_recognised_rate']:.1%})",
             f"{d['original_retained_accuracy']:.1%}"] for _, d in decision_table(table).iterrows()]
    headers = ["size", "parameters", "best SAFEMax arm", "its retained acc", "SAFEMax arms that forget",
               "SalUn retained (recognised)", "original retained"]
    return (f"## Decision rule (pre-registered): best retained accuracy among SAFEMax arms with recognised "
            f"≤ {RECOGNISED_TARGET:.0%}\n\n" + markdown_table(headers, rows))


def decision_table(table: pd.DataFrame, original: str = "original") -> pd.DataFrame:
    """The pre-registered decision rule, per size: among SAFEMax arms whose mean recognised rate is ≤ 5 %, the one
    with the highest mean retained accuracy (or none), beside SalUn's and the original's retained accuracy."""
    means = table.groupby(["size", "parameters", "arm"], sort=False)[["recognised_rate", "retain_accuracy"]].mean()
    rows = []
    for (size, params), group in means.groupby(level=[0, 1], sort=False):
        group = group.droplevel([0, 1])
        safemax = group[group.index.str.startswith("safemax")]
        forgot = safemax[safemax["recognised_rate"] <= RECOGNISED_TARGET]
        ranked = forgot.sort_values(["retain_accuracy", "recognised_rate"], ascending=[False, True])
        best = ranked.index[0] if len(ranked) else None  # ties in retained accuracy: the lower recognised rate
        rows.append({"size": size, "parameters": params,
                     "best_forgetting_safemax_arm": best or "none forgets",
                     "its_retained_accuracy": group.loc[best, "retain_accuracy"] if best else float("nan"),
                     "safemax_arms_that_forget": len(forgot), "safemax_arms": len(safemax),
                     "salun_retained_accuracy": group["retain_accuracy"].get("salun", float("nan")),
                     "salun_recognised_rate": group["recognised_rate"].get("salun", float("nan")),
                     "original_retained_accuracy": group["retain_accuracy"].get(original, float("nan"))})
    return pd.DataFrame(rows)


ARM_STYLES = (  # (name prefix, colour map, line style): one colour family per kind of arm
    ("safemax_lr", "Blues", "-"), ("safemax_lam", "Greens", "-"), ("safemax_dwindow", "Greens", "-"),
    ("safemax_beta", "Oranges", "-"), ("safemax_emb", "Reds", "-"), ("safemax_salunmask", "Purples", "-"),
)


def arm_style(arm: str, index: int) -> dict:
    """Line style of an arm: SAFEMax as published black, SalUn dashed magenta, original dotted grey, control arms
    in one colour family per kind (learning rates blue, timesteps green, retain term orange, weights red/purple)."""
    fixed = {"safemax": dict(color="black", ls="-", lw=2.4), "salun": dict(color="m", ls="--", lw=2.4),
             "original": dict(color="grey", ls=":", lw=2.0)}
    if arm in fixed:
        return {**fixed[arm], "marker": "o", "label": arm}
    for prefix, cmap, ls in ARM_STYLES:
        if arm.startswith(prefix):
            return dict(color=pyplot().get_cmap(cmap)(0.45 + 0.25 * (index % 3)), ls=ls, lw=1.4, marker="o", label=arm)
    return dict(color="tab:brown", ls="-.", lw=1.2, marker="s", label=arm)


def plot_capacity(table: pd.DataFrame, path: Path) -> None:
    """Retained accuracy, recognised rate and retained KID relative to SalUn against parameter count, one line per
    arm (mean over forget classes), the paper's 35.7M point on the relative panel."""
    means = table.groupby(["arm", "parameters"])[["retain_accuracy", "recognised_rate", "kid"]].mean().reset_index()
    salun = means[means["arm"] == "salun"].set_index("parameters")["kid"]
    sizes = sorted(means["parameters"].unique())
    fig, axes = pyplot().subplots(1, 3, figsize=(17, 5.2), dpi=110)
    seen: dict[str, int] = {}
    for arm, group in means.groupby("arm", sort=True):
        family = next((prefix for prefix, _, _ in ARM_STYLES if str(arm).startswith(prefix)), str(arm))
        seen[family] = seen.get(family, -1) + 1
        style = arm_style(str(arm), seen[family])
        axes[0].plot(group["parameters"], group["retain_accuracy"], **style)
        axes[1].plot(group["parameters"], group["recognised_rate"], **style)
        ratio = group.set_index("parameters")["kid"] / salun.reindex(group["parameters"]).to_numpy()
        axes[2].plot(ratio.index, ratio.to_numpy(), **style)
    axes[2].plot([PAPER_PARAMETERS], [PAPER_RETAINED_RATIO], "k*", ms=14,
                 label="paper: SAFEMax/SalUn retained FID\n(CIFAR-10, 35.7M, no retained acc. reported)")
    titles = ("retained accuracy ↑ (clean classifier)", "forget class recognised ↓ (noise-aware reader)",
              "retained KID relative to SalUn's at the same size (1 = equal)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ticks = sizes + ([PAPER_PARAMETERS] if ax is axes[2] else [])
        ax.set_xticks(ticks, [f"{v / 1e6:.2g}M" for v in ticks])
        ax.minorticks_off()
        ax.set_xlabel("UNet parameters")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[2].set_yscale("log")
    axes[1].axhline(RECOGNISED_TARGET, color="grey", lw=0.8, ls=":")
    axes[2].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    save_figure(fig, path)
