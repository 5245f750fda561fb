"""Leaderboard aggregation from hand-made records: mean ± std, RTE, failed methods shown, files written."""

from __future__ import annotations

import math

import pandas as pd

from benchmark.orchestration.leaderboard import aggregate, records_frame, write_leaderboard


def _rec(method, fc, seed, ua, fid, seconds, status="ok", **extra):
    return {"profile": "t", "method": method, "forget_class": fc, "seed": seed, "status": status, "ua": ua,
            "forget_entropy": 1.0, "forget_prob": 1 - ua, "retain_accuracy": 0.9, "fid": fid,
            "total_seconds": seconds, "prepare_seconds": 0.0, "unlearn_seconds": seconds,
            "peak_memory_mb": 10.0, **extra}


RECORDS = [
    _rec("retrain", 0, 0, 1.0, 2.0, 100.0),
    _rec("retrain", 1, 0, 1.0, 4.0, 300.0),
    _rec("safemax", 0, 0, 0.9, 3.0, 10.0),
    _rec("safemax", 1, 0, 0.7, 5.0, 30.0),
    _rec("ga", 0, 0, float("nan"), float("nan"), float("nan"), status="failed", error="RuntimeError: boom"),
    _rec("original", 0, 0, 0.0, 1.0, 0.0),
]


def test_rte_is_retrain_time_over_method_time_per_class():
    df = records_frame(RECORDS)
    safemax = df[df.method == "safemax"].set_index("forget_class")["rte"]
    assert safemax[0] == 10.0 and safemax[1] == 10.0
    assert math.isnan(df[df.method == "original"]["rte"].iloc[0])


def test_aggregate_mean_std_and_failures():
    table = aggregate(records_frame(RECORDS)).set_index("method")
    assert table.loc["safemax", "ua_mean"] == 0.8
    assert abs(table.loc["safemax", "ua_std"] - 0.1) < 1e-12
    assert table.loc["retrain", "fid_mean"] == 3.0
    assert table.loc["ga", "failed"] == 1 and math.isnan(table.loc["ga", "ua_mean"])
    assert list(table.index[:2]) == ["original", "retrain"]


def test_written_files_show_failed_method(tmp_path, capsys):
    write_leaderboard(tmp_path, RECORDS, protocol="protocol line")
    md = (tmp_path / "leaderboard.md").read_text()
    assert "protocol line" in md and "| ga | 1 (1 failed) |" in md and "RuntimeError: boom" in md
    assert "80.0 ± 10.0 %" in md  # safemax UA
    assert (tmp_path / "leaderboard.png").stat().st_size > 1000
    assert len(pd.read_csv(tmp_path / "runs.csv")) == len(RECORDS)
    assert "safemax" in capsys.readouterr().out


def test_rebuild_without_protocol_keeps_the_stored_one(tmp_path):
    write_leaderboard(tmp_path, RECORDS, protocol="sampler X, 7 samples")
    write_leaderboard(tmp_path, RECORDS)  # what `unlearnbench leaderboard` does
    assert "sampler X, 7 samples" in (tmp_path / "leaderboard.md").read_text()
