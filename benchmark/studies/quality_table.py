"""The known-answer table of the quality measures (issue 19, item 2): which distance, in which feature space, ranks
blank, noisy, faint, wrong-class and collapsed sets below real digits?

For each forget class c_f it builds the sets of :func:`unlearnbench.metrics.quality.known_answer_sets` from the
*training* split — for the retained classes (``retain_per_class`` per class, the profile's protocol) and for c_f
(``forget_samples``) — and scores each against the real *test* images of the same classes (as the evaluator does),
with every measure of :func:`~unlearnbench.metrics.quality.quality_scores`, in every feature space of the yardstick
(:data:`SPACES`). The table is a function of a :class:`~unlearnbench.foundation.yardstick.Yardstick`, so a new
reader is judged by rerunning one command::

    python -m unlearnbench.studies.quality_table --profile mnist --out results/studies/quality-known-answers
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.classifier import EvalClassifier
from unlearnbench.foundation.config import load_profile
from unlearnbench.foundation.report_files import markdown_table
from unlearnbench.foundation.yardstick import Yardstick, load_yardstick
from unlearnbench.metrics.quality import (
    HIGHER_IS_BETTER,
    KID_SUBSET_FRACTION,
    METRICS,
    RBFMMD,
    SETS,
    known_answer_sets,
    known_answer_verdict,
    quality_scores,
)

SPACES = ("classifier", "reader")  # the yardstick networks whose penultimate features are candidate spaces
BLOCKS = ("retained", "forget")
DEFAULT_OUT = Path("results/studies/quality-known-answers")


def space_network(yardstick: Yardstick, space: str) -> EvalClassifier:
    """The network of a feature space: the clean classifier or the noise-aware reader."""
    return {"classifier": yardstick.classifier, "reader": yardstick.reader}[space]


def features(network: EvalClassifier, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The network's penultimate features (N, D) of ``images`` (CPU float32)."""
    return network.predict_logits_and_features(images, batch_size)[1]


def known_answer_table(yardstick: Yardstick, data: UnlearningDataModule, forget_classes: Sequence[int],
                       retain_per_class: int, forget_samples: int, seed: int = 0,
                       kid_subset_fraction: float = KID_SUBSET_FRACTION) -> pd.DataFrame:
    """One row per (forget class, block, space, set, metric) with its value; ``block`` is ``retained`` (the sets of
    the classes but c_f, ``retain_per_class`` each) or ``forget`` (sets of c_f, ``forget_samples`` images)."""
    train_x, train_y = data.split("train")
    test_x, test_y = data.split("test")
    test = {space: features(space_network(yardstick, space), test_x) for space in SPACES}
    rows = []
    for c_f in forget_classes:
        retained = data.classes_except(c_f)
        for block, classes, n in (("retained", retained, retain_per_class * len(retained)),
                                  ("forget", [c_f], forget_samples)):
            sets = known_answer_sets(train_x, train_y, classes, n, seed)
            real_mask = torch.isin(test_y, torch.tensor(classes))
            for space in SPACES:
                network, real = space_network(yardstick, space), test[space][real_mask]
                mmd = RBFMMD(real)
                for name in SETS:
                    scores = quality_scores(real, features(network, sets[name]), seed, kid_subset_fraction, mmd=mmd)
                    rows += [{"forget_class": c_f, "block": block, "n": n, "space": space, "set": name,
                              "metric": metric, "value": value} for metric, value in scores.items()]
    return pd.DataFrame(rows)


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """The known-answer rule per (forget class, block, space, metric): ``passed`` and the sets that ``broke`` it."""
    rows = []
    keys = ["forget_class", "block", "space", "metric"]
    for (c_f, block, space, metric), group in table[table["metric"].isin(METRICS)].groupby(keys, sort=False):
        passed, broken = known_answer_verdict(dict(zip(group["set"], group["value"], strict=True)),
                                              metric in HIGHER_IS_BETTER)
        rows.append({"forget_class": c_f, "block": block, "space": space, "metric": metric, "passed": passed,
                     "broken_by": ", ".join(broken)})
    return pd.DataFrame(rows)


def _format(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 1e-3 else f"{value:.1e}"


def markdown_report(table: pd.DataFrame, verdict: pd.DataFrame) -> str:
    """``table.md``: the summary of verdicts, then one table per (forget class, block): rows = sets, columns =
    space/metric, and a verdict row (PASS, or FAIL with the sets that broke the rule)."""
    columns = [(space, metric) for space in SPACES for metric in METRICS]
    headers = [f"{space}/{metric}{' ↑' if metric in HIGHER_IS_BETTER else ' ↓'}" for space, metric in columns]
    summary = verdict.assign(case=lambda v: "c_f=" + v["forget_class"].astype(str) + " " + v["block"])
    cases = list(dict.fromkeys(summary["case"]))
    pivot = summary.set_index(["space", "metric", "case"])["passed"]
    summary_rows = [[f"{space}/{metric}", *("PASS" if pivot[space, metric, case] else "FAIL" for case in cases),
                     "yes" if all(pivot[space, metric, case] for case in cases) else "no"]
                    for space, metric in columns]
    parts = ["## Summary: PASS/FAIL of the known-answer rule\n",
             markdown_table(["space/metric", *cases, "passes all"], summary_rows)]
    for (c_f, block), group in table.groupby(["forget_class", "block"], sort=False):
        values = group.set_index(["set", "space", "metric"])["value"]
        rows = [[name, *(_format(values[name, space, metric]) for space, metric in columns)] for name in SETS]
        v = verdict[(verdict["forget_class"] == c_f) & (verdict["block"] == block)].set_index(["space", "metric"])
        rows.append(["**verdict**", *("PASS" if v.loc[key, "passed"] else f"FAIL ({v.loc[key, 'broken_by']})"
                                      for key in columns)])
        what = "retained classes" if block == "retained" else f"forget class {c_f} itself"
        parts += [f"\n## Forget class {c_f}: {what} (n = {group['n'].iloc[0]})\n", markdown_table(
            ["set", *headers], rows)]
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m unlearnbench.studies.quality_table --profile mnist [--out DIR] [--forget-classes 0 1]``: writes
    ``table.csv`` (long: one value per row; :func:`verdicts` of it give the rule's outcome) and ``table.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="mnist")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--forget-classes", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-floors", action="store_true",
                        help="load a yardstick whose card predates (or misses) the profile's floors: the table judges "
                             "its feature spaces, not its reading")
    args = parser.parse_args(argv)
    profile = load_profile(args.profile)
    yardstick = load_yardstick(profile, check=not args.skip_floors).to("cpu")
    data = UnlearningDataModule(profile.data, batch_size=profile.evaluation.batch_size, seed=profile.seed)
    start = time.perf_counter()
    table = known_answer_table(yardstick, data, args.forget_classes, profile.evaluation.retain_samples_per_class,
                               profile.evaluation.forget_samples, args.seed)
    verdict = verdicts(table)
    args.out.mkdir(parents=True, exist_ok=True)
    table.assign(yardstick=yardstick.name).to_csv(args.out / "table.csv", index=False, float_format="%.6g")
    header = (f"# Known-answer table of the quality measures\n\nYardstick `{yardstick.name}` ({profile.data.source} "
              f"{profile.data.image_size}px), seed {args.seed}, reference = real test images of the same classes. "
              f"Generated by `python -m unlearnbench.studies.quality_table --profile {args.profile}` in "
              f"{time.perf_counter() - start:.0f} s. ↓ lower is better, ↑ higher is better.\n\n")
    (args.out / "table.md").write_text(header + markdown_report(table, verdict))
    print(f"wrote {args.out}/table.md and table.csv")


if __name__ == "__main__":
    main()
