"""Leaderboard aggregation from hand-made records: mean ± std, RTE, failed methods shown, files written."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from unlearnbench.orchestration.leaderboard import aggregate, records_frame, write_leaderboard


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


# --- new fields: recognised rate, KID, relearning, dominant reading; intervals and paired differences ---

NOISE = [0.004, -0.003, 0.001, -0.002, 0.003, -0.001]
KEYS = [(fc, seed) for fc in (0, 1, 2) for seed in (0, 1)]


def _new(method, fc, seed, recognised, kid, name="6", **extra):
    return _rec(method, fc, seed, 1 - recognised, 5.0, 10.0, recognised_rate=recognised,
                unrecognisable_rate=0.1, dominant_class=10 if name == "unrecognisable" else 6,
                dominant_class_name=name, dominant_share=0.6, kid=kid, kid_std=1e-4, forget_kid=0.05,
                forget_fid=40.0, relearn_recognised_rate=float("nan") if method == "original" else 0.3,
                relearn_ua=0.7, **extra)


def _new_records():
    """"twin" equals "same" on every run; "clear" forgets 30 points more on every run (small noise), while the
    forget classes differ a lot from each other (0.1 per class)."""
    records = []
    for i, (fc, seed) in enumerate(KEYS):
        base = 0.5 + 0.1 * fc
        records += [_new("original", fc, seed, 0.95, 0.002),
                    _new("retrain", fc, seed, 0.02, 0.003, total_seconds=100.0),
                    _new("same", fc, seed, base, 0.01 + 0.001 * fc),
                    _new("twin", fc, seed, base, 0.01 + 0.001 * fc),
                    _new("clear", fc, seed, base - 0.3 + NOISE[i], 0.01 + 0.001 * fc,
                         name="unrecognisable" if fc else "6")]
    return records


def test_paired_differences_mark_a_clear_difference_and_not_identical_methods(tmp_path):
    write_leaderboard(tmp_path, _new_records(), protocol="p")
    pairs = pd.read_csv(tmp_path / "leaderboard_pairs.csv")
    assert "original" not in set(pairs["a"]) | set(pairs["b"])
    rec = pairs[pairs.metric == "recognised_rate"].set_index(["a", "b"])
    assert rec.loc[("same", "twin"), "mean_diff"] == 0.0 and not rec.loc[("same", "twin"), "significant"]
    assert rec.loc[("same", "clear"), "n"] == 6 and rec.loc[("same", "clear"), "significant"]
    assert abs(rec.loc[("same", "clear"), "mean_diff"] - 0.3) < 0.01
    assert rec.loc[("same", "clear"), "ci_low"] > 0.29  # paired: the 0.1-per-class spread cancels out
    md = (tmp_path / "leaderboard.md").read_text()
    assert "Paired differences (A − B), 95 % intervals; * = larger than its spread" in md
    row = {line.split(" | ")[0] + " | " + line.split(" | ")[1]: line for line in md.splitlines()
           if line.startswith("| same | ")}
    assert row["| same | twin"].startswith("| same | twin | 6 | +0.0 [+0.0, +0.0] |")
    assert "*" not in row["| same | twin"]
    assert row["| same | clear"].startswith("| same | clear | 6 | +30.") and "] * |" in row["| same | clear"]


def test_new_columns_and_intervals_in_the_tables(tmp_path):
    table = write_leaderboard(tmp_path, _new_records(), protocol="p").set_index("method")
    assert list(table.index[:2]) == ["original", "retrain"]
    assert table.loc["clear", "dominant_reading"] == "unrecognisable 4/6, 6 2/6"
    assert table.loc["same", "recognised_rate_n"] == 6
    values = [0.5 + 0.1 * fc for fc, _ in KEYS]  # same: 0.5, 0.5, 0.6, 0.6, 0.7, 0.7; s = 0.08944
    s = pd.Series(values).std(ddof=1)
    assert abs(table.loc["same", "recognised_rate_ci95"] - 2.5706 * s / 6 ** 0.5) < 1e-4  # t_{0.975,5} = 2.5706
    md = (tmp_path / "leaderboard.md").read_text()
    assert "## Forgetting" in md and "## Retained quality and cost" in md
    assert "Read `recognised` first: it\n  is the forgetting score that noise cannot fool" in md
    assert "| same | 6 | 60.0 ± 8.2 % | 10.0 ± 0.0 % | 6 6/6 | 40.0 ± 8.2 % |" in md  # std with ddof 0
    assert "| clear | 6 | 30.0 ± 8.2 % | 10.0 ± 0.0 % | unrecognisable 4/6, 6 2/6 |" in md
    assert "| same | 6 | 60.0 ± 9.4 % |" in md  # interval: 2.5706 · 0.08944 / √6 = 0.0939
    assert "| same | 6 | 90.0 ± 0.0 % | 5.00 ± 0.00 | 0.011 ± 0.000816 |" in md  # KID: 3 significant digits
    assert "over the n finished runs of each method (one run = one forget class × one seed" in md
    original = next(line for line in md.splitlines() if line.startswith("| original | 6 | 95.0"))
    assert original.endswith("| — |")  # no relearning attack on the original model
    assert (tmp_path / "leaderboard.png").stat().st_size > 1000


def test_old_records_without_the_new_columns_show_dashes(tmp_path):
    table = write_leaderboard(tmp_path, RECORDS, protocol="p").set_index("method")
    assert math.isnan(table.loc["safemax", "recognised_rate_mean"]) and table.loc["safemax", "dominant_reading"] == "—"
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| safemax | 2 | — | — | — | 80.0 ± 10.0 % |" in md  # recognised, unrecognisable, dominant; UA
    assert "| original | 1 | — | n = 1: no interval |" in md  # recognised missing; retained acc of a single run
    pairs = pd.read_csv(tmp_path / "leaderboard_pairs.csv")
    acc = pairs[(pairs.a == "retrain") & (pairs.b == "safemax") & (pairs.metric == "retain_accuracy")].iloc[0]
    assert acc["n"] == 2 and acc["mean_diff"] == 0.0 and not acc["significant"]
    assert "| retrain | safemax | 2 | — | +0.0 [+0.0, +0.0] | — |" in md
    assert "| retrain | ga | 0 | — | — | — |" in md  # ga only failed


def test_one_run_per_method_gives_no_interval_and_no_test(tmp_path):
    records = [r for r in _new_records() if (r["forget_class"], r["seed"]) == (0, 0)]
    write_leaderboard(tmp_path, records)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| same | 1 | n = 1: no interval | n = 1: no interval |" in md
    assert "| same | clear | 1 | n < 2 | n < 2 | n < 2 |" in md


def test_reference_table_is_rebuilt_from_the_json_not_parsed_from_markdown(tmp_path):
    from unlearnbench.orchestration.leaderboard import reference_table

    ref = tmp_path / "ref"
    records = [{**r, "hardware": "cpu: x (2 threads)"} for r in _new_records()]
    write_leaderboard(ref, records)
    main_tables = (ref / "leaderboard.md").read_text().split("## 95 %")[0].split("## Forgetting\n\n")[1]
    (ref / "leaderboard.md").write_text("# not a table\n")  # never read
    text = reference_table(ref)
    head, _, tables = text.partition("\n\n")
    assert head.startswith(f"Reference ({ref}, cpu: x (2 threads)):\n")  # then the provenance line
    assert "no run records: what made it is unknown" in head
    assert tables.startswith("Forgetting:\n| method | runs | recognised ↓")
    assert text.split("Forgetting:\n")[1] == main_tables.strip().replace(
        "## Retained quality and cost\n\n", "Retained quality and cost:\n")  # the same two tables as written
    assert "Paired" not in text and "n = 1" not in text and "| same | twin |" not in text

    table = json.loads((ref / "leaderboard.json").read_text())
    table[0]["method"] = "renamed"
    (ref / "leaderboard.json").write_text(json.dumps(table))
    assert "| renamed | 6 |" in reference_table(ref)
    (ref / "runs.csv").unlink()
    assert reference_table(ref).startswith(f"Reference ({ref}, not recorded):")
    (ref / "leaderboard.json").unlink()
    assert reference_table(ref) == ""  # no reference


def test_one_markdown_table_writer():
    from unlearnbench.foundation.report_files import markdown_table

    assert markdown_table(["a", "b"], [[1, "x"], [2.5, None]]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |"
    assert markdown_table(["only"], []) == "| only |\n|---|"


def test_the_figure_saver_writes_atomically_and_closes_the_figure(tmp_path):
    from unlearnbench.foundation.report_files import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "sub" / "f.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"
    assert not plt.fignum_exists(fig.number)  # closed
    assert [p.name for p in path.parent.iterdir()] == ["f.png"]  # no temporary file left
    broken, _ = plt.subplots()
    with pytest.raises(ValueError):
        save_figure(broken, tmp_path / "g.png", format="no-such-format")
    assert not (tmp_path / "g.png").exists() and not plt.fignum_exists(broken.number)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
