"""`unlearnbench run --profile smoke` end to end (W&B offline in a temp dir), resume, and config errors."""

from __future__ import annotations

import dataclasses
import json

import pytest

from unlearnbench.foundation.config import ConfigError, load_profile
from unlearnbench.orchestration.cli import main
from unlearnbench.orchestration.runner import BenchmarkRunner


@pytest.fixture
def smoke_args(tmp_path, session_cache):
    return ["--profile", "smoke", "--output-dir", str(tmp_path / "results"), "--cache-dir", session_cache]


def test_smoke_end_to_end_with_wandb_offline(smoke_args, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    assert main(["run", *smoke_args, "--set", "runtime.progress=false"]) == 0
    out = tmp_path / "results" / "smoke"
    records = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
    methods = {r["method"] for r in records}
    assert {"original", "safemax", "retrain", "salun", "ga"} <= methods
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    for r in records:
        assert 0.0 <= r["ua"] <= 1.0 and r["fid"] >= 0.0 and r["sampler"]
        assert (out / r["grid_path"]).is_file()
        # every row is attacked (the original and Retrain calibrate the attacks), each attack by its worst case
        assert r["relearn_curve"][0][0] == 0 and r["relearn_max"] == max(rate for _, rate in r["relearn_curve"])
        for field in ("inversion_recognised", "no_forget_data_recognised", "null_recognised", "reader_forget_prob",
                      "mmd", "forget_mmd", "coverage"):
            assert field in r, (r["method"], field)
        assert r["attack_set"] == "light" and isinstance(r["reader_disagrees"], bool)
        if r["method"] not in ("retrain", "original"):  # Retrain ran first: its curve is every run's reference
            assert "relearn_excess" in r and r["retrain_run_key"], r["method"]
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.png", "runs.csv", "config.json"):
        assert (out / name).is_file(), name
    assert list((tmp_path / "wandb").rglob("*.wandb")), "W&B offline run files were not written where WANDB_DIR says"
    printed = capsys.readouterr()
    assert "UA" in printed.out + printed.err

    # a second run reuses every record
    capsys.readouterr()
    assert main(["run", *smoke_args, "--set", "runtime.progress=false"]) == 0
    assert "0 to run" in capsys.readouterr().err


def test_resume_after_interrupted_run(tmp_path, session_cache, monkeypatch):
    profile = load_profile("smoke", [f"runtime.cache_dir={session_cache}", f"runtime.output_dir={tmp_path}",
                                     "runtime.progress=false", "runtime.logger=none",
                                     "unlearning.methods=[safemax,ga]"])
    runner = BenchmarkRunner(profile)
    calls = {"n": 0}
    real_run_one = BenchmarkRunner.run_one

    def interrupt_second(self, spec, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # killed half-way, in the middle of the grid
        return real_run_one(self, spec, *args, **kwargs)

    monkeypatch.setattr(BenchmarkRunner, "run_one", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    runs = tmp_path / "smoke" / "runs"
    assert len(list(runs.glob("*.json"))) == 1
    assert not [p for p in runs.iterdir() if p.name.startswith(".")], "a temporary file was left behind"

    monkeypatch.setattr(BenchmarkRunner, "run_one", real_run_one)
    done = []
    monkeypatch.setattr(BenchmarkRunner, "run_one",
                        lambda self, spec, *a, **k: done.append(spec.method) or real_run_one(self, spec, *a, **k))
    records = BenchmarkRunner(profile).run()
    assert len(done) == 2 and len(records) == 3  # only the two unfinished runs were computed

    # one record made by older code (the code is recorded, never keyed): nothing is recomputed, and the table names
    # the code of each of its records, not only the code that draws it
    older = sorted(runs.glob("*.json"))[0]
    older.write_text(json.dumps({**json.loads(older.read_text()), "code_fingerprint": "older-code"}))
    assert len(BenchmarkRunner(profile).run()) == 3 and len(done) == 2
    board = (tmp_path / "smoke" / "leaderboard.md").read_text()
    assert f"records made by code {records[0]['code_fingerprint']}, older-code." in board


def test_bad_config_key_stops_before_work(smoke_args, capsys):
    assert main(["run", *smoke_args, "--set", "unlearning.stepz=3"]) == 2
    err = capsys.readouterr().err
    assert "stepz" in err
    with pytest.raises(ConfigError, match="unknown profile"):
        load_profile("no-such-profile")


def test_unknown_method_lists_available(smoke_args, capsys):
    assert main(["run", *smoke_args, "--methods", "safemax,nosuchmethod"]) == 2
    err = capsys.readouterr().err
    assert "nosuchmethod" in err and "safemax" in err


def test_bad_forget_class_is_refused(smoke_args, capsys):
    assert main(["run", *smoke_args, "--forget-classes", "12"]) == 2
    assert "forget_classes contains 12" in capsys.readouterr().err


def test_a_profile_extends_another_and_states_only_what_it_changes(tmp_path):
    extended, base = load_profile("mnist-extended"), load_profile("mnist")
    assert extended.name == "mnist-extended" and "sa" in extended.unlearning.methods
    assert (extended.data, extended.unet, extended.pretrain.recipe(), extended.sampler) == (
        base.data, base.unet, base.pretrain.recipe(), base.sampler)  # the same original's recipe, same sampler
    full_attacks = {"relearn_steps": 100, "relearn_readings": [5, 10, 20, 50], "inversion_steps": 100,
                    "no_forget_steps": 100}  # the full attack set; the scores' protocol is otherwise the same
    assert extended.evaluation == dataclasses.replace(base.evaluation, **full_attacks)
    assert base.evaluation.inversion_steps == base.evaluation.no_forget_steps == 0
    child = tmp_path / "child.yaml"
    child.write_text("extends: smoke\nname: child\nunlearning:\n  steps: 7\n")
    p = load_profile(str(child), ["unlearning.seeds=[3]"])
    assert (p.name, p.unlearning.steps, p.unlearning.seeds, p.data.source) == ("child", 7, [3], "digits")
    fashion, both = load_profile("fashion"), load_profile("fashion-extended")  # two bases sharing theirs: mnist once
    assert (both.data, both.classifier, both.pretrain) == (fashion.data, fashion.classifier, fashion.pretrain)
    assert (both.evaluation, both.unlearning.methods) == (extended.evaluation, extended.unlearning.methods)
    assert fashion.data.source == "fashion-mnist" and fashion.evaluation == base.evaluation
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="extends itself"):
        load_profile(str(loop))
