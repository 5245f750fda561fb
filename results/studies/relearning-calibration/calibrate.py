"""Calibrating the relearning attack (issue 9): how strong must it be to separate "forgotten" from "hidden"?

Retrain never saw the forget class, so what it relearns in the attack's budget is the floor any honest method should
sit near. For each attack learning rate this runs the relearning attack (:meth:`Evaluator.relearning`) on Retrain
for a few forget classes, on unlearned models and on the original, and prints the recognised rate of the forget
class after each reading step (the relearning curve).

    .venv/bin/python results/studies/relearning-calibration/calibrate.py                 # as in the README's table
    .venv/bin/python results/studies/relearning-calibration/calibrate.py --set pretrain.steps=2500  # older original

The README's table was made at commit 89f10c2 (plus the reading callback), whose mnist original had 2,500
pretraining steps; today's mnist profile trains 2,000, so a rerun reads another original (and Retrain) than the
table's. Tested on the tiny profile by tests/test_result_scripts.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence
from typing import NamedTuple

import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.config import Profile, load_profile
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.pretraining import load_original
from unlearnbench.foundation.yardstick import load_yardstick
from unlearnbench.methods import unlearn
from unlearnbench.metrics.evaluator import Evaluator

# The calibration's protocol on top of the profile: DDIM-25, a 50-step attack read after 5, 10, 20 and 50 steps,
# 50 forget-class samples per reading.
CALIBRATION_OVERRIDES = ["runtime.progress=false", "runtime.logger=none", "sampler.steps=25",
                         "evaluation.relearn_steps=50", "evaluation.relearn_readings=[5,10,20]",
                         "evaluation.relearn_samples=50"]
ATTACK_LRS = (1e-4, 5e-4)  # the attack's Adam learning rates compared
RETRAIN_CLASSES = (0, 1)  # forget classes of the Retrain floors
METHODS = ("safemax", "salun")  # unlearned models attacked (forget class METHOD_CLASS)
METHOD_CLASS = 0


class AttackTarget(NamedTuple):
    """A model the attack runs on: its label in the table, the class it forgot (the attacked class), the model."""

    name: str
    forget_class: int
    model: ConditionalDiffusion


def calibration_models(profile: Profile, data: UnlearningDataModule, retrain_classes: Sequence[int] = RETRAIN_CLASSES,
                       methods: Sequence[str] = METHODS, method_class: int = METHOD_CLASS) -> list[AttackTarget]:
    """Retrain for each of ``retrain_classes``, each method unlearning ``method_class`` (run seed 0) and the
    original (attacked on ``method_class``), all from the profile's (cached or trained) original."""
    original, _ = load_original(profile)
    targets = [AttackTarget(f"retrain f{c}", c, unlearn("retrain", original, c, data, profile, seed=0).model)
               for c in retrain_classes]
    targets += [AttackTarget(f"{m} f{method_class}", method_class,
                             unlearn(m, original, method_class, data, profile, seed=0).model) for m in methods]
    targets.append(AttackTarget(f"original f{method_class}", method_class, original))
    return targets


def relearning_curves(profile: Profile, data: UnlearningDataModule, targets: Sequence[AttackTarget],
                      lrs: Sequence[float] = ATTACK_LRS, every_attack: bool = False) -> list[dict]:
    """The relearning attack at each learning rate in ``lrs`` on every target, with the profile's evaluation
    protocol otherwise: one row per (lr, target) with its curve ``[[step, recognised rate], …]`` (from step 0) and
    seconds. ``every_attack``: also the profile's other attacks (inversion, no forget data, leakage), whose curves
    and scores are added to the row; otherwise they are switched off."""
    yardstick = load_yardstick(profile)
    others = {} if every_attack else {"inversion_steps": 0, "no_forget_steps": 0, "null_samples": 0}
    rows = []
    for lr in lrs:
        protocol = dataclasses.replace(profile.evaluation, relearn_lr=lr, **others)
        evaluator = Evaluator(yardstick, data, profile.sampler, protocol, profile.runtime.cache_dir, progress=False)
        for target in targets:
            start = time.perf_counter()
            out = evaluator.attacks(target.model, target.forget_class, profile.runtime, protocol.seed, 0,
                                    label_dropout=profile.pretrain.label_dropout)
            rows.append({"lr": lr, "model": target.name, "forget_class": target.forget_class,
                         **{k: v for k, v in out.items() if k.endswith(("_curve", "_recognised", "_max"))},
                         "seconds": time.perf_counter() - start})
    return rows


def parse_args(argv: Sequence[str] | None = None) -> tuple[Profile, argparse.Namespace]:
    """The calibration's profile (``--profile`` with :data:`CALIBRATION_OVERRIDES`, then ``--set``) and options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="mnist")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="profile overrides, applied last")
    parser.add_argument("--lrs", type=float, nargs="+", default=list(ATTACK_LRS))
    parser.add_argument("--retrain-classes", type=int, nargs="*", default=list(RETRAIN_CLASSES))
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    parser.add_argument("--every-attack", action="store_true",
                        help="also run the profile's inversion, no-forget-data and leakage attacks")
    args = parser.parse_args(argv)
    return load_profile(args.profile, CALIBRATION_OVERRIDES + args.set), args


def main(argv: Sequence[str] | None = None) -> list[dict]:
    """Run the calibration and print one line per (lr, model): ``lr 0.0001 retrain f0: [[5, 0.04], …] (12.3s)``."""
    profile, args = parse_args(argv)
    torch.set_num_threads(2)  # as in the run of record (the 2-core CPU)
    data = UnlearningDataModule(profile.data, batch_size=profile.unlearning.batch_size, seed=profile.seed)
    targets = calibration_models(profile, data, args.retrain_classes, args.methods)
    rows = relearning_curves(profile, data, targets, args.lrs, args.every_attack)
    for row in rows:
        others = {k: v for k, v in row.items() if k not in ("lr", "model", "forget_class", "relearn_curve", "seconds")}
        print(f"lr {row['lr']:g} {row['model']}: {row['relearn_curve']} ({row['seconds']:.1f}s)"
              + (f" {others}" if args.every_attack else ""), flush=True)
    return rows


if __name__ == "__main__":
    main()
