"""Equal-budget tuning on a validation forget class (METHODS.md: choose a profile's defaults by measurement on a
validation class, not the reported one, and give every method the same tuning budget).

Every method gets the same grid of learning rates (and nothing else), the profile's step budget, and is scored by
the one evaluator on ``validation_class``. The rule that picks each method's learning rate is fixed in advance:
among settings that forget (UA ≥ ``ua_target``), the highest retained accuracy; if none forgets, the highest UA
(ties: higher retained accuracy). Records go to ``<output_dir>/<profile>-tuning/lr<value>/`` (resumable like any
run) and the summary to ``<output_dir>/<profile>-tuning/summary.{md,csv}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from benchmark.foundation.config import load_profile
from benchmark.orchestration.runner import BenchmarkRunner

UA_TARGET = 0.95


def tuning_dir(output_dir: str, profile: str) -> Path:
    return Path(output_dir) / f"{profile}-tuning"


def run_grid(profile: str, methods: list[str], lrs: list[str], validation_class: int, output_dir: str = "results",
             overrides: list[str] | None = None) -> pd.DataFrame:
    """Run every method at every learning rate on the validation class; returns one row per (method, lr)."""
    rows = []
    for lr in lrs:
        args = "{" + ", ".join(f"{m}: {{lr: {lr}}}" for m in methods) + "}"
        p = load_profile(profile, [
            *(overrides or []),
            f"unlearning.methods=[{','.join(methods)}]",
            f"unlearning.forget_classes=[{validation_class}]",
            "unlearning.include_original=false",
            f"unlearning.method_args={args}",
            f"runtime.output_dir={tuning_dir(output_dir, profile) / f'lr{lr}'}",
        ])
        for r in BenchmarkRunner(p).run():
            rows.append({"method": r["method"], "lr": float(lr), "status": r["status"], "ua": r.get("ua"),
                         "forget_entropy": r.get("forget_entropy"), "retain_accuracy": r.get("retain_accuracy"),
                         "fid": r.get("fid"), "seconds": r.get("total_seconds")})
    return pd.DataFrame(rows)


def select(grid: pd.DataFrame, ua_target: float = UA_TARGET) -> pd.DataFrame:
    """The chosen row per method under the fixed rule (see the module docstring)."""
    chosen = []
    for _, g in grid[grid["status"] == "ok"].groupby("method", sort=False):
        forgets = g[g["ua"] >= ua_target]
        pick = (forgets.sort_values("retain_accuracy", ascending=False) if len(forgets)
                else g.sort_values(["ua", "retain_accuracy"], ascending=False)).iloc[0]
        chosen.append(pick)
    return pd.DataFrame(chosen)


def write_summary(grid: pd.DataFrame, out: Path, profile: str, validation_class: int) -> pd.DataFrame:
    chosen = select(grid)
    grid = grid.sort_values(["method", "lr"]).reset_index(drop=True)
    grid["chosen"] = [any((c.method == r.method) and (c.lr == r.lr) for c in chosen.itertuples())
                      for r in grid.itertuples()]
    out.mkdir(parents=True, exist_ok=True)
    grid.to_csv(out / "summary.csv", index=False)
    lines = [f"# Tuning on validation forget class {validation_class} (profile `{profile}`)", "",
             f"Same grid for every method (learning rate only), the profile's step budget. Rule: among settings with "
             f"UA ≥ {UA_TARGET:.0%}, the highest retained accuracy; else the highest UA.", "",
             "| method | lr | UA | H (forget) | retained acc | FID | time (s) | chosen |",
             "|---|---|---|---|---|---|---|---|"]
    for r in grid.itertuples():
        lines.append(f"| {r.method} | {r.lr:g} | {r.ua:.1%} | {r.forget_entropy:.2f} | {r.retain_accuracy:.1%} | "
                     f"{r.fid:.2f} | {r.seconds:.1f} | {'**yes**' if r.chosen else ''} |")
    picked = json.dumps({c.method: {"lr": c.lr} for c in chosen.itertuples()})
    lines += ["", f"Chosen `unlearning.method_args`: `{picked}`"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stdout)
    return chosen
