"""``unlearnbench verify``: a published reference is reproduced and stamped; a changed number is caught; the
leaderboard's reference line says whether the reference is validated for the current code (tiny profile)."""

from __future__ import annotations

import json

import pytest

from unlearnbench.foundation.config import load_profile
from unlearnbench.orchestration.reference import ORIGINAL_DIR, STAMP_FILE, reference_status
from unlearnbench.orchestration.runner import BenchmarkRunner, publish
from unlearnbench.orchestration.verify import compare, verify


def overrides(tmp_path, cache) -> list[str]:
    return [f"runtime.cache_dir={cache}", f"runtime.output_dir={tmp_path / 'local'}", "runtime.progress=false",
            "runtime.logger=none", "unlearning.methods=[ga,safemax,rl]", "unlearning.forget_classes=[0]",
            "unlearning.steps=3", "pretrain.steps=60", "pretrain.warmup_steps=10", "classifier.min_accuracy=0.0",
            "evaluation.forget_samples=8", "evaluation.retain_samples_per_class=2", "evaluation.relearn_steps=2",
            "evaluation.relearn_readings=[1]", "evaluation.relearn_samples=4"]


def test_verify_reproduces_a_published_reference_stamps_it_and_catches_a_changed_number(tmp_path, session_cache,
                                                                                       monkeypatch, capsys):
    settings = overrides(tmp_path, session_cache)
    runner = BenchmarkRunner(load_profile("smoke", settings))
    runner.run()
    publish(runner, reference_root=tmp_path / "reference")
    ref = tmp_path / "reference" / "smoke"
    assert (ref / ORIGINAL_DIR / "metadata.json").is_file()  # the reference ships its original's weights
    assert "validated for your code: NO" in reference_status(ref)

    comparisons, _, where = verify("smoke", settings, reference_dir=ref)
    labels = [c.label for c in comparisons]  # the original and the reference's two fastest methods
    assert labels[0] == "original" and len(labels) == 3 and set(labels[1:]) < {"ga", "safemax", "rl"}
    assert all(c.ok for c in comparisons), [c.differences for c in comparisons]
    stamp = json.loads((ref / STAMP_FILE).read_text())
    assert stamp["mode"] == "bit-identical" and stamp["hardware"] == where and len(stamp["runs"]) == 3
    assert "validated for your code: yes (bit-identical" in reference_status(ref)
    assert "versions equal" in reference_status(ref)

    # another code than the stamped one: the line says so
    import unlearnbench.orchestration.reference as reference

    edited = {**reference.module_hashes(), "unlearnbench.methods.salun": "0" * 16}
    monkeypatch.setattr(reference, "code_fingerprint", lambda: "0123456789abcdef")
    monkeypatch.setattr(reference, "module_hashes", lambda: edited)
    line = reference_status(ref)
    assert "validated for your code: NO" in line and line.endswith("modules changed since: unlearnbench.methods.salun")
    monkeypatch.undo()

    # a reference number that today's code does not make: verify fails and names it
    path = next((ref / "runs").glob("ga__*.json"))
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "retain_accuracy": record["retain_accuracy"] + 0.5}))
    (ref / STAMP_FILE).unlink()
    comparisons, _, _ = verify("smoke", settings, methods=["ga"], reference_dir=ref)
    bad = [c for c in comparisons if not c.ok]
    assert [c.label for c in bad] == ["ga"] and bad[0].differences[0].startswith("retain_accuracy:")
    assert not (ref / STAMP_FILE).exists()


def test_comparison_is_exact_on_the_same_hardware_and_tolerant_elsewhere():
    ref = {"recognised_rate": 0.10, "fid": 100.0, "unlearn_seconds": 3.0, "forget_histogram": [1, 2]}
    near = {"recognised_rate": 0.12, "fid": 103.0, "unlearn_seconds": 9.0, "forget_histogram": [1, 2]}
    assert compare(ref, near, exact=False) == []  # within 0.05 on rates, 5 % elsewhere; times never compared
    assert [d.split(":")[0] for d in compare(ref, near, exact=True)] == ["fid", "recognised_rate"]
    far = {**near, "fid": 120.0, "recognised_rate": 0.2}
    assert [d.split(":")[0] for d in compare(ref, far, exact=False)] == ["fid", "recognised_rate"]
    assert compare(ref, {k: v for k, v in ref.items() if k != "fid"}, exact=True) == ["fid: 100.0 → missing"]
    nan = {**ref, "extra_final_loss": float("nan")}
    assert compare(nan, dict(nan), exact=True) == []  # NaN reproduces NaN
    assert compare(nan, {**nan, "extra_final_loss": 1.0}, exact=True) == ["extra_final_loss: nan → 1.0"]
    derived = {**ref, "relearn_excess": 0.6, "retrain_run_key": "abc"}  # from Retrain's record, not rerun by verify
    assert compare(derived, ref, exact=True) == []
    settings = {**ref, "method_config": '{"lr": 1e-05}'}  # settings are compared for equality everywhere
    assert compare(settings, {**settings, "method_config": '{"lr": 3e-05}'}, exact=False) == [
        'method_config: \'{"lr": 1e-05}\' → \'{"lr": 3e-05}\'']


def test_verify_refuses_a_profile_without_reference(tmp_path):
    from unlearnbench.foundation.config import ConfigError

    with pytest.raises(ConfigError, match="no reference records"):
        verify("smoke", [], reference_dir=tmp_path / "nothing")
