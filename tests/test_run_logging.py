"""A run's logger (W&B, CSV or none): chosen from the profile, the environment's ``WANDB_MODE`` wins, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lightning.pytorch.loggers import CSVLogger

from unlearnbench.foundation.config import load_profile
from unlearnbench.orchestration.run_logging import (
    log_final,
    log_leaderboard,
    logs_to_wandb,
    open_logger,
    wandb_mode,
)


def profile_with(*overrides: str):
    return load_profile("smoke", list(overrides))


def test_wandb_environment_wins(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode("offline") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert wandb_mode("online") == "offline"
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_mode("offline") == "offline"


def test_the_logger_follows_the_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    wandb = profile_with("runtime.logger=wandb")
    assert not logs_to_wandb(wandb) and open_logger(wandb, tmp_path, "run", {}) is False
    assert open_logger(profile_with("runtime.logger=none"), tmp_path, "run", {}) is False
    csv = open_logger(profile_with("runtime.logger=csv"), tmp_path, "run", {})
    assert isinstance(csv, CSVLogger) and csv.save_dir == str(tmp_path / "csv_logs") and csv.name == "run"
    log_final(profile_with("runtime.logger=csv"), csv, {"recognised_rate": 0.5}, tmp_path / "grid.png")  # no-op


def test_a_runs_wandb_logger_is_grouped_by_profile_and_typed_by_its_row(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    logger = open_logger(profile_with("runtime.logger=wandb"), tmp_path, "salun-f0-s0", {}, job_type="salun")
    assert (logger._wandb_init["group"], logger._wandb_init["job_type"]) == ("smoke", "salun")


def test_a_logger_that_cannot_start_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    blocker = tmp_path / "file"
    blocker.write_text("x")  # W&B's folder cannot be made inside a file
    monkeypatch.setenv("WANDB_DIR", str(blocker / "wandb"))
    profile = profile_with("runtime.logger=wandb", "runtime.wandb_mode=offline")
    assert logs_to_wandb(profile)
    with pytest.warns(UserWarning, match="results are still written locally"):
        assert open_logger(profile, tmp_path, "run", {}) is False


def test_a_plans_leaderboard_is_one_offline_wandb_run_with_the_table(tmp_path, monkeypatch):
    from unlearnbench.orchestration.reference import reference_records

    reference = Path(__file__).resolve().parents[1] / "results" / "reference" / "mnist"
    records = reference_records(reference)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    log_leaderboard(profile_with("runtime.logger=wandb"), reference, records, "the protocol")
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))  # one run, readable by `wandb sync`
    tables = {p.name.split("_0_")[0]: json.loads(p.read_text()) for p in runs[0].glob("files/media/table/*.json")}
    board = tables["leaderboard"]  # one row per method x forget class x seed, every score
    assert len(board["data"]) == len(records) == 15
    columns = board["columns"]
    assert {"method", "forget_class", "seed", "recognised_rate", "retain_accuracy", "mmd", "relearn_max"} <= {*columns}
    rows = {(r[columns.index("method")], r[columns.index("forget_class")]): r for r in board["data"]}
    salun = next(r for r in records if r["method"] == "salun" and r["forget_class"] == 1)
    assert rows[("salun", 1)][columns.index("recognised_rate")] == salun["recognised_rate"]
    assert len(tables["leaderboard_by_method"]["data"]) == 5  # the aggregated rows
    assert len(list(runs[0].glob("files/media/images/grids_*.png"))) == 15
