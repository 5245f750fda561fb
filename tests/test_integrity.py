"""Every number measured here, under the printed protocol: keys, stale records, retries, argument typos, memory.

Each test here pins a defect of the earlier main (issue 8): it fails there and passes now.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import torch

from unlearnbench.foundation.config import ConfigError, load_profile
from unlearnbench.foundation.pretraining import load_original
from unlearnbench.methods import SAFEMax, canonical_name
from unlearnbench.orchestration.cli import main
from unlearnbench.orchestration.runner import BenchmarkRunner, select_records

EXTRA_MB = 256  # large against the run-to-run noise of a fresh process (a few MiB at this scale)


class SAFEMaxWithBallast(SAFEMax):
    """SAFEMax plus one extra float32 tensor of EXTRA_MB MiB held for the whole run (a method's extra state)."""

    @dataclass
    class Config(SAFEMax.Config):
        pass

    def prepare(self) -> None:
        self.ballast = torch.ones(EXTRA_MB * 2**20 // 4)


BALLAST = f"{__name__}:SAFEMaxWithBallast"


@pytest.fixture
def runner_profile(tmp_path, session_cache):
    return load_profile("smoke", [f"runtime.cache_dir={session_cache}", f"runtime.output_dir={tmp_path}",
                                  "runtime.progress=false", "runtime.logger=none", "unlearning.methods=[safemax,ga]",
                                  "unlearning.steps=3", "pretrain.steps=60", "pretrain.warmup_steps=10",
                                  "classifier.epochs=1", "classifier.min_accuracy=0.0",
                                  "evaluation.forget_samples=8", "evaluation.retain_samples_per_class=2"])


def keys(profile) -> dict[str, str]:
    runner = BenchmarkRunner(profile)
    return {s.label: s.key for s in runner.validate()[1]}


def test_a_protocol_option_or_version_changes_every_key(runner_profile, monkeypatch):
    base = keys(runner_profile)
    clipped = copy.deepcopy(runner_profile)
    clipped.sampler.clip = "consistent"
    assert set(keys(clipped).values()).isdisjoint(base.values())
    eta = copy.deepcopy(runner_profile)
    eta.sampler.eta = 1.0
    assert set(keys(eta).values()).isdisjoint(base.values())
    import unlearnbench.orchestration.runner as runner_module

    monkeypatch.setattr(runner_module, "PROTOCOL_VERSION", runner_module.PROTOCOL_VERSION + 1)
    assert set(keys(runner_profile).values()).isdisjoint(base.values())


def test_keys_carry_hardware_precision_and_threads(runner_profile, monkeypatch):
    base = keys(runner_profile)
    import unlearnbench.orchestration.runner as runner_module

    real = runner_module.environment
    monkeypatch.setattr(runner_module, "environment", lambda device, precision: {**real(device, precision),
                                                                                  "device_name": "other CPU"})
    assert set(keys(runner_profile).values()).isdisjoint(base.values())


def test_stale_records_are_excluded_and_counted_and_failed_runs_are_retried(runner_profile, tmp_path, capsys):
    runner = BenchmarkRunner(runner_profile)
    records = runner.run()
    assert len(records) == 3 and all(r["status"] == "ok" for r in records)
    runs = runner.runs_dir
    # a stale record of another protocol, same method name: never averaged in
    stale = dict(records[1], run_key="0" * 16, ua=0.123456)
    (runs / "safemax__f0__s0__0000000000000000.json").write_text(json.dumps(stale))
    chosen, skipped = select_records(runs, {r["run_key"] for r in records})
    assert skipped == 1 and all(r["ua"] != 0.123456 for r in chosen)
    capsys.readouterr()
    out = BenchmarkRunner(runner_profile).run()
    assert len(out) == 3 and "1 record(s) of other settings" in capsys.readouterr().err
    # a failed run is retried on the next run (and only it)
    ga = next(r for r in out if r["method"] == "ga")
    path = next(runs.glob(f"ga__f0__s0__{ga['run_key']}.json"))
    path.write_text(json.dumps(dict(ga, status="failed", error="RuntimeError: boom")))
    again = BenchmarkRunner(runner_profile)
    assert [s.label for s in again.pending(again.validate()[1])] == ["ga"]
    again.run()
    assert json.loads(path.read_text())["status"] == "ok"


def test_a_method_args_typo_stops_before_work(runner_profile, capsys):
    bad = copy.deepcopy(runner_profile)
    bad.unlearning.method_args = {"safmax": {"lr": 1e-5}}
    with pytest.raises(Exception, match="safmax"):
        BenchmarkRunner(bad).validate()
    assert main(["run", "--profile", "smoke", "--set", "unlearning.method_args={safmax: {lr: 1e-5}}",
                 "--output-dir", runner_profile.runtime.output_dir]) == 2
    err = capsys.readouterr().err
    assert "safmax" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_class_path_and_registered_name_are_one_method(runner_profile):
    assert canonical_name("unlearnbench.methods.safemax:SAFEMax") == canonical_name("safemax") == "safemax"
    both = copy.deepcopy(runner_profile)
    both.unlearning.methods = ["safemax", "unlearnbench.methods.safemax:SAFEMax"]
    with pytest.raises(ConfigError, match="twice"):
        BenchmarkRunner(both).validate()


def test_variants_are_rows_with_their_own_options(runner_profile):
    p = copy.deepcopy(runner_profile)
    p.unlearning.methods = ["safemax", "safemax_fld0.1"]
    p.unlearning.variants = {"safemax_fld0.1": {"method": "safemax", "forget_label_dropout": 0.1}}
    specs = BenchmarkRunner(p).validate()[1]
    configs = {s.label: s.method_config for s in specs if s.method == "safemax"}
    assert configs["safemax"]["forget_label_dropout"] == 0.0
    assert configs["safemax_fld0.1"]["forget_label_dropout"] == 0.1
    p.unlearning.variants = {"safemax_x": {"method": "safemax", "forget_label_dropuot": 0.1}}
    p.unlearning.methods = ["safemax_x"]
    with pytest.raises(Exception, match="forget_label_dropuot"):
        BenchmarkRunner(p).validate()


def test_problems_found_before_work_stop_in_one_line(tmp_path, capsys, session_cache):
    common = ["--profile", "smoke", "--cache-dir", session_cache]
    cases = [
        (["--pretrained", str(tmp_path / "nowhere")], "no diffusers UNet"),
        (["--set", "runtime.devices=2", "runtime.strategy=ddp"], "ddp_spawn"),
        (["--set", "runtime.devices=3"], "not divisible by runtime.devices=3"),
        (["--set", "sampler.kind=ddpm", "sampler.eta=1.0"], "eta"),
        (["--output-dir", "results/reference"], "reference"),
    ]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases.append((["--output-dir", str(blocker / "sub")], "cannot write"))
    for extra, expected in cases:
        start = time.perf_counter()
        assert main(["run", *common, "--output-dir", str(tmp_path / "out"), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (extra, err)
        assert time.perf_counter() - start < 30


def test_listing_methods_and_help_start_fast():
    exe = [sys.executable, "-m", "unlearnbench.orchestration.cli"]
    for args in (["methods"], ["--help"], ["run", "--help"]):
        start = time.perf_counter()
        out = subprocess.run([*exe, *args], capture_output=True, text=True, env={**os.environ}, check=True)
        assert time.perf_counter() - start < 2.0, args
        assert "torch" not in out.stderr
    listed = subprocess.run([*exe, "methods"], capture_output=True, text=True, check=True).stdout
    assert "safemax" in listed and "SAFEMax (Spartalis" in listed


# -- peak memory ------------------------------------------------------------------------------------------------
@pytest.fixture
def memory_setup(profile):
    p = copy.deepcopy(profile)
    p.unlearning.steps = 3
    p.unlearning.batch_size = 64
    return p, load_original(p)[0]


def peak(name, setup) -> float:
    """The peak memory of one run measured as the runner does: in a fresh process."""
    from unlearnbench.methods.isolation import unlearn_isolated

    p, original = setup
    return unlearn_isolated(p, None, original, name, 0, 0, {}).peak_memory_mb


def test_one_extra_tensor_of_known_size_shows_as_that_much_more_memory(memory_setup):
    plain, ballast = peak("safemax", memory_setup), peak(BALLAST, memory_setup)
    assert ballast - plain == pytest.approx(EXTRA_MB, rel=0.10), (plain, ballast)


def test_memory_figures_do_not_depend_on_run_order(runner_profile):
    figures = []
    for order in (["salun", "ga", "safemax"], ["safemax", "ga", "salun"]):
        p = copy.deepcopy(runner_profile)
        p.unlearning.methods = order
        p.unlearning.include_original = False
        p.unlearning.batch_size = 64
        p.runtime.output_dir = f"{p.runtime.output_dir}/{'-'.join(order)}"
        figures.append({r["method"]: r["peak_memory_mb"] for r in BenchmarkRunner(p).run()})
    # ±10 %: fresh processes of the tiny model differ by up to ~6 % run to run whatever the order (measured in a
    # cold clone: SalUn 118.9 vs 126.9 MiB); in-process measurement differed by 15 MiB with the order alone.
    for name, mb in figures[0].items():
        assert figures[1][name] == pytest.approx(mb, rel=0.10), figures
    assert figures[0]["salun"] > figures[0]["safemax"] > 0  # a mask, a retain batch and a second pass cost memory
