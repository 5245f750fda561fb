"""The scripts that made committed results (under ``results/``) still run: each one's main logic on the tiny profile.

They are not part of the package, so a refactor of the package would otherwise break them silently. Each script is
loaded from its file (``runpy``, without running its ``__main__`` block); its functions take a profile.
"""

from __future__ import annotations

import copy
import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from unlearnbench.foundation.pretraining import load_original
from unlearnbench.methods import unlearn

RESULTS = Path(__file__).resolve().parents[1] / "results"
CALIBRATE = RESULTS / "studies" / "relearning-calibration" / "calibrate.py"
RESCORE = RESULTS / "studies" / "safemax-rescored" / "rescore.py"


def load_script(path: Path) -> SimpleNamespace:
    """The script's module-level names, loaded without running its ``if __name__ == "__main__"`` block."""
    return SimpleNamespace(**runpy.run_path(str(path), run_name=path.stem))


def test_every_script_under_results_is_tested_here():
    scripts = {p.relative_to(RESULTS) for p in RESULTS.rglob("*.py") if "local" not in p.relative_to(RESULTS).parts}
    assert scripts == {CALIBRATE.relative_to(RESULTS), RESCORE.relative_to(RESULTS)}, (
        "a script under results/ made a committed result: give it a test in tests/test_result_scripts.py "
        "(or make it a CLI command)")


@pytest.fixture
def attack_profile(profile):
    """The tiny profile with a 4-step relearning attack read at step 2 and 4 on 4 samples."""
    p = copy.deepcopy(profile)
    p.evaluation.relearn_steps, p.evaluation.relearn_readings = 4, [2]
    p.evaluation.relearn_samples, p.evaluation.relearn_images = 4, 8
    return p


def test_calibrate_reads_a_relearning_curve_per_attack_lr_and_model(attack_profile, data):
    calibrate = load_script(CALIBRATE)
    targets = calibrate.calibration_models(attack_profile, data, retrain_classes=[0], methods=["safemax"],
                                           method_class=2)
    assert [(t.name, t.forget_class) for t in targets] == [("retrain f0", 0), ("safemax f2", 2), ("original f2", 2)]
    lr_before = attack_profile.evaluation.relearn_lr
    rows = calibrate.relearning_curves(attack_profile, data, targets, lrs=[1e-4, 5e-4])
    assert [(r["lr"], r["model"]) for r in rows] == [(lr, t.name) for lr in (1e-4, 5e-4) for t in targets]
    for row in rows:
        assert [step for step, _ in row["relearn_curve"]] == [0, 2, 4]
        assert all(0.0 <= rate <= 1.0 for _, rate in row["relearn_curve"])
    assert attack_profile.evaluation.relearn_lr == lr_before  # each lr on a copy of the protocol


def test_calibrate_applies_the_calibration_protocol_then_the_user_overrides(session_cache):
    calibrate = load_script(CALIBRATE)
    profile, args = calibrate.parse_args(["--profile", "smoke", "--set", f"runtime.cache_dir={session_cache}",
                                          "evaluation.relearn_steps=7", "--lrs", "3e-4"])
    assert profile.sampler.steps == 25 and profile.evaluation.relearn_readings == [5, 10, 20]  # the calibration's
    assert profile.evaluation.relearn_steps == 7  # the user's override wins
    assert args.lrs == [3e-4] and args.methods == ["safemax", "salun"] and args.retrain_classes == [0, 1]


def test_rescore_regenerates_the_same_samples_and_says_so(profile, data, tmp_path):
    from unlearnbench.foundation.yardstick import load_yardstick

    rescore = load_script(RESCORE)
    labels = rescore.old_protocol_labels(10, 3, 5, 2)
    assert labels.tolist() == [3] * 5 + [0, 0, 1, 1, 2, 2, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]
    original = load_original(profile)[0]
    retrain = unlearn("retrain", original, 0, data, profile, seed=0).model
    models = rescore.rescored_models(original, retrain, data, profile)
    assert list(models) == ["original", "safemax", "retrain"]
    stand_in = load_yardstick(profile).classifier  # plays the old classifier
    sizes = {"forget_samples": 6, "per_class": 2}
    first = rescore.rescore(profile, data, models, stand_in, tmp_path / "a", {}, **sizes)
    assert not any(first[name]["same_samples_as_old_record"] for name in models)  # no old record given
    recorded = {name: first[name]["old_classifier_histogram"] for name in models}
    again = rescore.rescore(profile, data, models, stand_in, tmp_path / "b", recorded, **sizes)
    for name in models:
        row = again[name]
        assert row["same_samples_as_old_record"], name  # regenerated samples: the same histogram
        assert sum(row["old_classifier_histogram"]) == 6 and sum(row["reader_histogram"]) == 6
        assert row["recognised_rate"] + row["unrecognisable_rate"] <= 1.0 + 1e-6  # shares (float32 means)
        assert (tmp_path / "b" / f"{name}__f0.png").is_file()
    assert json.loads((tmp_path / "b" / "rescored.json").read_text()) == json.loads(json.dumps(again))
