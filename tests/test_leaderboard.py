"""Leaderboard aggregation from hand-made records: mean ± std, RTE, excess over Retrain, collapsed runs, the
reader-disagreement flag, medians of heavy-tailed metrics, clamped intervals, Holm-corrected comparisons, files."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from unlearnbench.orchestration.leaderboard import (
    aggregate,
    heavy_cell,
    records_frame,
    reference_table,
    write_leaderboard,
)
from unlearnbench.orchestration.statistics import holm


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
    """A run with the issue-19 fields; MMD = 2 · KID unless given, forget-class MMD 0.02 (KID 0.05)."""
    fields = dict(recognised_rate=recognised, unrecognisable_rate=0.1,
                  dominant_class=10 if name == "unrecognisable" else 6, dominant_class_name=name, dominant_share=0.6,
                  mmd=2 * kid, kid=kid, kid_std=1e-4, forget_mmd=0.02, forget_kid=0.05, forget_fid=40.0,
                  relearn_recognised_rate=float("nan") if method == "original" else 0.3,
                  relearn_max=float("nan") if method == "original" else 0.4, relearn_ua=0.7,
                  relearn_curve=None if method == "original" else [[0, 0.0], [20, 0.4]],
                  reader_forget_prob=recognised, precision=0.8, recall=0.7, density=1.05, coverage=0.6)
    fields.update(extra)
    return _rec(method, fc, seed, 1 - recognised, fields.pop("fid", 5.0), fields.pop("total_seconds", 10.0), **fields)


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


def test_paired_differences_of_exploratory_pairs_are_never_starred(tmp_path):
    write_leaderboard(tmp_path, _new_records(), protocol="p")
    pairs = pd.read_csv(tmp_path / "leaderboard_pairs.csv")
    assert "original" not in set(pairs["a"]) | set(pairs["b"])
    rec = pairs[pairs.metric == "recognised_rate"].set_index(["a", "b"])
    assert rec.loc[("same", "twin"), "mean_diff"] == 0.0 and not rec.loc[("same", "twin"), "interval_excludes_0"]
    assert rec.loc[("same", "twin"), "p_value"] == 1.0
    clear = rec.loc[("same", "clear")]
    assert clear["n"] == 6 and clear["interval_excludes_0"] and clear["p_value"] < 1e-6
    assert abs(clear["mean_diff"] - 0.3) < 0.01
    assert clear["ci_low"] > 0.29  # paired: the 0.1-per-class spread cancels out
    # neither is SAFEMax or Retrain: exploratory, so no Holm p-value and no star however small p is
    assert clear["family"] == "exploratory" and pd.isna(clear["p_holm"]) and pd.isna(clear["holm_significant"])
    assert rec.loc[("retrain", "clear"), "family"] == "confirmatory"
    md = (tmp_path / "leaderboard.md").read_text()
    assert "Paired differences (A − B), 95 % intervals; * = significant after Holm's correction" in md
    exploratory = md.split("**Exploratory (uncorrected, never starred)**:")[1]
    row = {line.split(" | ")[0] + " | " + line.split(" | ")[1]: line for line in exploratory.splitlines()
           if line.startswith("| same | ")}
    assert row["| same | twin"].startswith("| same | twin | 6 | +0.0 [+0.0, +0.0] |")
    assert row["| same | clear"].startswith("| same | clear | 6 | +30.") and "*" not in row["| same | clear"]
    assert "*" not in exploratory


def test_new_columns_and_intervals_in_the_tables(tmp_path):
    table = write_leaderboard(tmp_path, _new_records(), protocol="p").set_index("method")
    assert list(table.index[:2]) == ["original", "retrain"]
    assert table.loc["clear", "dominant_reading"] == "unrecognisable 4/6, 6 2/6"
    assert table.loc["same", "recognised_rate_n"] == 6
    values = [0.5 + 0.1 * fc for fc, _ in KEYS]  # same: 0.5, 0.5, 0.6, 0.6, 0.7, 0.7; s = 0.08944
    s = pd.Series(values).std(ddof=1)
    assert abs(table.loc["same", "recognised_rate_ci95"] - 2.5706 * s / 6 ** 0.5) < 1e-4  # t_{0.975,5} = 2.5706
    md = (tmp_path / "leaderboard.md").read_text()
    assert md.index("## Forgetting") < md.index("## Attacks") < md.index("## Retained quality and cost")
    assert "Read `recognised`\n  first: it is the forgetting score that noise cannot fool" in md
    # recognised, reader P(c_f), unrecognisable, dominant reading, UA (std with ddof 0), H (forget), forget-class MMD
    # (3 significant digits, not heavy-tailed: mean ± std)
    assert ("| method | runs | recognised ↓ | reader P(c_f) | unrecognisable | dominant reading | UA ↑ | H (forget) "
            "| forget-class MMD |\n") in md
    assert ("| same | 6 | 60.0 ± 8.2 % | 60.0 ± 8.2 % | 10.0 ± 0.0 % | 6 6/6 | 40.0 ± 8.2 % | 1.00 ± 0.00 "
            "| 0.02 ± 0 |\n") in md
    assert "| clear | 6 | 30.0 ± 8.2 % | 30.0 ± 8.2 % | 10.0 ± 0.0 % | unrecognisable 4/6, 6 2/6 |" in md
    # intervals of recognised, relearned max, retained acc, MMD, KID, time (no FID)
    assert ("| method | n | recognised ↓ | relearned max ↓ | retained acc ↑ | MMD ↓ | KID ↓ | unlearning time (s) |"
            in md)
    # recognised: 2.5706 · 0.08944 / √6 = 0.0939; MMD 0.022 ± 2.5706 · 0.0017889 / √6 = ± 0.00188; KID half that
    assert ("| same | 6 | 60.0 [50.6, 69.4] % | 40.0 [40.0, 40.0] % | 90.0 [90.0, 90.0] % | 0.022 [0.0201, 0.0239] "
            "| 0.011 [0.0101, 0.0119] | 10.00 [10.00, 10.00] |") in md
    # retained acc, MMD (3 significant digits, mean ± std: not heavy-tailed), KID (heavy-tailed: mean · median
    # (per forget class)), recall, coverage, prior time, unlearning time (equal on every run: one value), RTE, memory
    assert ("| method | runs | retained acc ↑ | MMD ↓ | KID ↓ | recall ↑ | coverage ↑ | prior time (s) "
            "| unlearning time (s) | RTE ↑ | peak mem (MiB) |\n") in md
    assert ("| same | 6 | 90.0 ± 0.0 % | 0.022 ± 0.00163 | mean 0.011 · median 0.011 (0: 0.01 / 1: 0.011 / 2: 0.012) "
            "| 70.0 ± 0.0 % | 60.0 ± 0.0 % | 0.00 ± 0.00 | 10.0 | 10.00 ± 0.00 | 10 ± 0 |\n") in md
    # FID, precision, density and forget-class KID: aggregated into the CSV only
    csv = pd.read_csv(tmp_path / "leaderboard.csv").set_index("method")
    expected = {"fid": 5.0, "precision": 0.8, "density": 1.05, "forget_kid": 0.05, "mmd": 0.022, "forget_mmd": 0.02}
    assert {c: csv.loc["same", f"{c}_mean"] for c in expected} == pytest.approx(expected)
    assert "mmd_median" not in csv and "kid_median" in csv  # MMD is not heavy-tailed, KID is
    headers = [line for line in md.splitlines() if line.startswith("| method |")]
    assert not [h for h in headers if any(name in h for name in ("FID", "precision", "density", "forget-class KID"))]
    assert "over the n finished runs of each method (one run = one forget class × one seed" in md
    assert "| original | 6 | — | — | — | — | — | — | — |" in md  # no attack on the original model here
    assert "| same | 6 | 40.0 ± 0.0 % | +0.0 ± 0.0 pp | — |" in md  # relearned max equal to Retrain's
    assert "relearned, last reading" not in md and "relearn_recognised_rate_mean" in table
    assert (tmp_path / "leaderboard.png").stat().st_size > 1000


def test_old_records_without_the_new_columns_show_dashes(tmp_path):
    table = write_leaderboard(tmp_path, RECORDS, protocol="p").set_index("method")
    assert math.isnan(table.loc["safemax", "recognised_rate_mean"]) and table.loc["safemax", "dominant_reading"] == "—"
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| safemax | 2 | — | — | — | — | 80.0 ± 10.0 % |" in md  # recognised, P(c_f), unrecognisable, dominant
    assert "| original | 1 | — | — | n = 1: no interval |" in md  # recognised, relearned max; retained acc of one run
    assert "| safemax | 2 | — | — | — | — | — | — | — |" in md  # no attack columns
    assert "Attack set: not recorded." in md
    pairs = pd.read_csv(tmp_path / "leaderboard_pairs.csv")
    acc = pairs[(pairs.a == "retrain") & (pairs.b == "safemax") & (pairs.metric == "retain_accuracy")].iloc[0]
    assert acc["n"] == 2 and acc["mean_diff"] == 0.0 and not acc["interval_excludes_0"] and acc["p_value"] == 1.0
    assert acc["family"] == "confirmatory" and not acc["holm_significant"]
    assert "| retrain | safemax | 2 | — | +0.0 [+0.0, +0.0] | — | — |" in md
    assert "| retrain | ga | 0 | — | — | — | — |" in md  # ga only failed


def test_one_run_per_method_gives_no_interval_and_no_test(tmp_path):
    records = [r for r in _new_records() if (r["forget_class"], r["seed"]) == (0, 0)]
    write_leaderboard(tmp_path, records)
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| same | 1 | n = 1: no interval | n = 1: no interval |" in md
    assert "| same | clear | 1 | n < 2 | n < 2 | n < 2 | n < 2 |" in md
    # a single run: MMD (not heavy-tailed) as mean ± 0, KID and unlearning time the value, no median
    assert "| same | 1 | 90.0 ± 0.0 % | 0.02 ± 0 | 0.01 | 70.0 ± 0.0 % | 60.0 ± 0.0 % | 0.00 ± 0.00 | 10.0 |" in md


def test_reference_table_is_rebuilt_from_the_json_not_parsed_from_markdown(tmp_path):
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
    expected = main_tables.strip()
    for title in ("Attacks", "Retained quality and cost"):
        expected = expected.replace(f"## {title}\n\n", f"{title}:\n")
    assert text.split("Forgetting:\n")[1] == expected  # the same three tables as written
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


# --- issue 19: attacks, excess over Retrain, collapsed runs, the reader flag, medians, clamping, Holm ---

def _attack(method, fc, seed=0, relearn=0.5, **extra):
    """A run with attack scores: inversion = relearn / 2, no forget data = relearn / 4, leakage = relearn / 10."""
    extra.setdefault("relearn_curve", [[0, 0.0], [20, relearn]])
    return _new(method, fc, seed, 0.05, 0.01, relearn_max=relearn, relearn_area=relearn / 2,
                inversion_recognised=relearn / 2, no_forget_data_recognised=relearn / 4,
                null_recognised=relearn / 10, attack_set="full", collapse_floor=0.5, **extra)


def test_excess_over_retrain_is_matched_by_forget_class_and_seed():
    records = [_attack("retrain", 0, relearn=0.4), _attack("retrain", 1, relearn=0.2),
               _attack("safemax", 0, relearn=0.9), _attack("safemax", 1, relearn=0.5),
               _attack("safemax", 2, relearn=0.7),  # no Retrain of class 2
               _attack("safemax", 0, seed=1, relearn=0.6),  # nor of seed 1
               _attack("retrain", 1, seed=1, relearn=0.8, status="failed"),  # a failed Retrain is no reference
               _rec("salun", 0, 0, 0.5, 5.0, 10.0)]  # no attack scores
    df = records_frame(records).set_index(["method", "forget_class", "seed"])
    assert df.loc[("safemax", 0, 0), "relearn_excess"] == pytest.approx(0.5)
    assert df.loc[("safemax", 1, 0), "relearn_excess"] == pytest.approx(0.3)
    assert math.isnan(df.loc[("safemax", 2, 0), "relearn_excess"])
    assert math.isnan(df.loc[("safemax", 0, 1), "relearn_excess"])
    assert df.loc[("retrain", 0, 0), "relearn_excess"] == 0.0 and df.loc[("retrain", 1, 0), "relearn_excess"] == 0.0
    assert math.isnan(df.loc[("salun", 0, 0), "relearn_excess"])
    # the other attacks likewise: 0.9/2 − 0.4/2, 0.9/4 − 0.4/4, 0.9/10 − 0.4/10
    assert df.loc[("safemax", 0, 0), "inversion_excess"] == pytest.approx(0.25)
    assert df.loc[("safemax", 0, 0), "no_forget_data_excess"] == pytest.approx(0.125)
    assert df.loc[("safemax", 0, 0), "null_excess"] == pytest.approx(0.05)
    table = aggregate(records_frame(records)).set_index("method")
    assert table.loc["safemax", "relearn_excess_mean"] == pytest.approx(0.4)  # (0.5 + 0.3) / 2, NaNs left out
    no_retrain = records_frame([r for r in records if r["method"] != "retrain"])
    assert no_retrain["relearn_excess"].isna().all()


def test_relearning_excess_is_the_largest_lead_over_retrains_curve():
    """Both curves end at 100 %, so their maxima tie; the hidden class led Retrain by 60 pp at step 20."""
    retrain = _attack("retrain", 0, relearn=1.0, relearn_curve=[[0, 0.04], [20, 0.4], [100, 1.0]])
    hidden = _attack("safemax", 0, relearn=1.0, relearn_curve=[[0, 0.0], [20, 1.0], [100, 1.0]])
    slower = _attack("salun", 0, relearn=0.7, relearn_curve=[[0, 0.0], [20, 0.06], [100, 0.7]])
    df = records_frame([retrain, hidden, slower]).set_index("method")
    assert df.loc["safemax", "relearn_excess"] == pytest.approx(0.6)
    assert df.loc["salun", "relearn_excess"] == pytest.approx(-0.04)  # never ahead: its smallest lag
    assert df.loc["retrain", "relearn_excess"] == 0.0


def test_collapsed_runs_leave_the_attack_scores_only(tmp_path):
    records = []
    for fc in (0, 1, 2):
        records += [_attack("retrain", fc, relearn=0.3),
                    _attack("ga", fc, relearn=0.0, collapsed=True, retain_accuracy=0.1),
                    _attack("o3", fc, relearn=0.9 if fc else 0.0, collapsed=fc == 0,
                            retain_accuracy=0.1 if fc == 0 else 0.9)]
    table = write_leaderboard(tmp_path, records, protocol="p").set_index("method")
    assert table.loc["o3", "collapsed_runs"] == 1 and table.loc["ga", "collapsed_runs"] == 3
    assert table.loc["o3", "relearn_max_mean"] == pytest.approx(0.9)  # the collapsed 0.0 is left out
    assert table.loc["o3", "relearn_max_n"] == 2
    assert table.loc["o3", "retain_accuracy_mean"] == pytest.approx((0.1 + 0.9 + 0.9) / 3)  # quality keeps it
    assert math.isnan(table.loc["ga", "relearn_max_mean"]) and math.isnan(table.loc["ga", "null_recognised_mean"])
    md = (tmp_path / "leaderboard.md").read_text()
    attacks = md.split("## Attacks")[1].split("## Retained")[0]
    assert "| ga | 3 (3 collapsed) | n/a (collapsed) | n/a (collapsed) |" in attacks
    assert "| o3 | 3 (1 collapsed) | 90.0 ± 0.0 % | +60.0 ± 0.0 pp | 45.0 ± 0.0 % | 45.0 ± 0.0 % |" in attacks
    assert "| retrain | 3 | 30.0 ± 0.0 % | +0.0 ± 0.0 pp |" in attacks
    assert "collapse floor of 50 %" in attacks and "Attack set: full." in attacks
    assert "| ga | 3 |" in md.split("## Retained")[1]  # not marked outside the attacks
    assert "| ga | 3 | 5.0 [5.0, 5.0] % | n/a (collapsed) |" in md  # interval table
    pairs = pd.read_csv(tmp_path / "leaderboard_pairs.csv").set_index(["a", "b", "metric"])
    assert pairs.loc[("retrain", "o3", "relearn_max"), "n"] == 2  # the collapsed run is not paired
    assert pairs.loc[("retrain", "ga", "relearn_max"), "n"] == 0
    assert pairs.loc[("retrain", "ga", "retain_accuracy"), "n"] == 3


def test_reader_disagreement_is_flagged_and_named_never_averaged_away(tmp_path):
    records = [_new("o3", fc, 0, 0.05, 0.01, reader_disagrees=fc == 1) for fc in (0, 1, 2)]
    records += [_new("salun", fc, 0, 0.05, 0.01, reader_disagrees=False) for fc in (0, 1, 2)]
    records += [_new("esd", fc, 0, 0.05, 0.01) for fc in (0, 1)]  # older records: no flag recorded
    records += [_new("esd", 2, 0, 0.05, 0.01, reader_disagrees=True)]
    table = write_leaderboard(tmp_path, records, protocol="p").set_index("method")
    assert table.loc["o3", "reader_disagrees_runs"] == 1 and table.loc["o3", "reader_checked_runs"] == 3
    assert table.loc["esd", "reader_checked_runs"] == 1
    assert table.loc["o3", "recognised_rate_mean"] == pytest.approx(0.05)  # the flag changes no number
    forgetting = (tmp_path / "leaderboard.md").read_text().split("## Forgetting")[1].split("## Attacks")[0]
    assert "| o3 | 3 | 5.0 ± 0.0 % ⚑ reader disagrees 1/3 | 5.0 ± 0.0 % |" in forgetting
    assert "| esd | 3 | 5.0 ± 0.0 % ⚑ reader disagrees 1/1 |" in forgetting
    assert "| salun | 3 | 5.0 ± 0.0 % | 5.0 ± 0.0 % |" in forgetting
    lines = forgetting.strip().splitlines()
    assert lines[-2:] == ["- o3: forget class 1 (seed 0)", "- esd: forget class 2 (seed 0)"]
    assert "exceeds `recognised` by more than 15 pp" in forgetting


def test_heavy_tailed_metrics_show_median_and_per_class_values(tmp_path):
    fids = {0: [141.0, 141.0], 1: [10_000.0, 10_418.0], 2: [148.0, 148.0]}  # O3-like: one class blows up
    records = [_new("o3", fc, seed, 0.05, 0.01 * (fc + 1), fid=fid, total_seconds=40.0 + fc)
               for fc, values in fids.items() for seed, fid in enumerate(values)]
    records += [_new("wide", fc, 0, 0.05, 0.01 + 0.001 * fc, fid=100.0 + fc) for fc in range(8)]
    table = write_leaderboard(tmp_path, records, protocol="p").set_index("method")
    assert table.loc["o3", "fid_mean"] == pytest.approx(3499.33, abs=0.01)
    assert table.loc["o3", "fid_median"] == 148.0  # of the 6 runs: 141, 141, 148, 148, 10000, 10418
    assert json.loads(table.loc["o3", "fid_by_class"]) == {"0": 141.0, "1": 10_209.0, "2": 148.0}
    assert table.loc["o3", "kid_median"] == pytest.approx(0.02)
    csv = pd.read_csv(tmp_path / "leaderboard.csv").set_index("method")
    assert csv.loc["o3", "fid_median"] == 148.0 and "total_seconds_median" in csv and "forget_fid_median" in csv
    assert json.loads(csv.loc["o3", "fid_by_class"]) == {"0": 141.0, "1": 10_209.0, "2": 148.0}
    assert json.loads(csv.loc["o3", "kid_by_class"]) == pytest.approx({"0": 0.01, "1": 0.02, "2": 0.03})
    assert csv.loc["o3", "forget_kid_median"] == 0.05 and len(json.loads(csv.loc["wide", "fid_by_class"])) == 8
    assert "mmd_median" not in csv and "forget_mmd_median" not in csv  # MMD is not heavy-tailed
    # FID and forget-class KID are in the CSV only; their cell, were it shown, is the same heavy-tailed one
    o3 = table.loc["o3"].to_dict()
    assert heavy_cell(o3, "fid") == "mean 3,499 · median 148 (0: 141 / 1: 10,209 / 2: 148)"
    assert heavy_cell(o3, "forget_kid") == "0.05"  # equal on every run: one value
    md = (tmp_path / "leaderboard.md").read_text()
    quality = md.split("## Retained quality and cost")[1]
    # MMD = 2 · KID: 0.02, 0.04, 0.06 per class, mean ± std (std ddof 0 = 0.0163); KID mean · median (per class)
    assert ("| o3 | 6 | 90.0 ± 0.0 % | 0.04 ± 0.0163 "
            "| mean 0.02 · median 0.02 (0: 0.01 / 1: 0.02 / 2: 0.03) |") in quality
    assert "| mean 41.0 · median 41.0 (0: 40.0 / 1: 41.0 / 2: 42.0) |" in quality  # unlearning time
    assert ("| wide | 8 | 90.0 ± 0.0 % | 0.027 ± 0.00458 | mean 0.0135 · median 0.0135 (per class 0.01–0.017) |"
            in quality)  # > 6 classes: their range
    assert "3,499" not in md and "10,209" not in md  # FID left the Markdown
    forgetting = md.split("## Forgetting")[1].split("## Attacks")[0]
    assert "| o3 | 6 | 5.0 ± 0.0 % |" in forgetting and "| 0.02 ± 0 |\n" in forgetting  # forget-class MMD


def test_rate_intervals_are_clamped_to_0_and_100_percent(tmp_path):
    rates = [0.0, 0.0, 0.03]  # mean 1 %, half-width 4.30 %: the raw interval starts at −3.3 %
    records = [_new("ga", fc, 0, r, 0.01, retain_accuracy=1 - r) for fc, r in enumerate(rates)]
    table = write_leaderboard(tmp_path, records, protocol="p").set_index("method")
    assert table.loc["ga", "recognised_rate_ci95"] == pytest.approx(0.0430265, abs=1e-6)  # unclamped half-width
    assert table.loc["ga", "recognised_rate_ci_low"] == 0.0
    assert table.loc["ga", "recognised_rate_ci_high"] == pytest.approx(0.0530265, abs=1e-6)
    assert table.loc["ga", "retain_accuracy_ci_high"] == 1.0
    assert table.loc["ga", "kid_ci_low"] == table.loc["ga", "kid_ci_high"] == pytest.approx(0.01)  # KID: not a rate
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| ga | 3 | 1.0 [0.0, 5.3] % | 40.0 [40.0, 40.0] % | 99.0 [94.7, 100.0] % |" in md
    assert "clamped to [0, 100 %]" in md


def _family_records():
    """retrain forgets (2 %), safemax too (5 ± noise); "same" keeps 60 %, "clear" 30 %: every pair differs.
    Retained MMD is 0.006 (2 · KID) except for "same" (0.05)."""
    records = []
    for i, (fc, seed) in enumerate(KEYS):
        records += [_new("retrain", fc, seed, 0.02, 0.003), _new("safemax", fc, seed, 0.05 + NOISE[i], 0.003),
                    _new("same", fc, seed, 0.6, 0.003, mmd=0.05), _new("clear", fc, seed, 0.3 + NOISE[i], 0.003)]
    return records


def test_holm_corrects_the_confirmatory_family_only(tmp_path):
    write_leaderboard(tmp_path, _family_records(), protocol="p")
    pairs = pd.read_csv(tmp_path / "leaderboard_pairs.csv")
    assert {"p_value", "p_holm", "family", "holm_significant", "interval_excludes_0"} <= set(pairs.columns)
    family = {(a, b): f for a, b, f in pairs[["a", "b", "family"]].itertuples(index=False)}
    assert family == {("retrain", "safemax"): "confirmatory", ("retrain", "same"): "confirmatory",
                      ("retrain", "clear"): "confirmatory", ("safemax", "same"): "confirmatory",
                      ("safemax", "clear"): "confirmatory", ("same", "clear"): "exploratory"}
    confirmatory = pairs[pairs.family == "confirmatory"]
    tested = confirmatory[confirmatory.p_value.notna()]
    assert len(tested) == 5 * 4  # 5 pairs × (recognised, retained acc, MMD, relearned max)
    assert set(tested["metric"]) == {"recognised_rate", "retain_accuracy", "mmd", "relearn_max"}  # MMD replaced KID
    expected = holm(tested["p_value"].to_numpy(), 0.05)
    assert tested["p_holm"].to_numpy() == pytest.approx(expected.adjusted)
    assert tested["holm_significant"].astype(bool).tolist() == expected.rejected.tolist()
    smallest = tested.loc[tested.p_value.idxmin()]
    assert smallest["p_holm"] == pytest.approx(min(1.0, 20 * smallest["p_value"]))  # m · p for the smallest
    exploratory = pairs[pairs.family == "exploratory"]
    assert exploratory["p_holm"].isna().all() and exploratory["holm_significant"].isna().all()
    assert exploratory["p_value"].notna().any()  # tested, but outside the family
    md = (tmp_path / "leaderboard.md").read_text()
    confirmatory_md, exploratory_md = md.split("**Confirmatory")[1].split("**Exploratory")
    assert "(Holm over m = 20 tests at α = 0.05; * = significant)" in confirmatory_md
    assert "| retrain | safemax | 6 | -3.0 [-3.3, -2.7] * |" in confirmatory_md
    assert ("| A | B | n | recognised (pp) | retained acc (pp) | MMD | relearned max (pp) |"
            in confirmatory_md)
    # MMD: 0.006 − 0.05 on every pair (3 significant digits); retained acc and MMD of retrain and safemax equal
    assert ("| retrain | same | 6 | -58.0 [-58.0, -58.0] * | +0.0 [+0.0, +0.0] | -0.044 [-0.044, -0.044] * |"
            in confirmatory_md)
    assert "| retrain | safemax | 6 | -3.0 [-3.3, -2.7] * | +0.0 [+0.0, +0.0] | +0 [+0, +0] |" in confirmatory_md
    assert "| same | clear | 6 | +30." in exploratory_md
    assert not [line for line in exploratory_md.splitlines() if line.startswith("|") and "*" in line]
    assert "| same | clear |" not in confirmatory_md
    assert "Holm's step-down rule" in md and "**exploratory**" in md


def test_attack_heading_names_the_attack_sets():
    from unlearnbench.orchestration.leaderboard import attack_heading

    assert attack_heading([{"method": "a", "attack_set": "light"}, {"method": "b", "attack_set": "light"}]
                          ).startswith("Attack set: light. ")
    mixed = attack_heading([{"method": "retrain", "attack_set": "full"}, {"method": "ga", "attack_set": "light"},
                            {"method": "o3", "attack_set": "full, light"}, {"method": "x", "attack_set": float("nan")}])
    assert mixed.startswith("Attack sets: full (retrain, o3); light (ga, o3). ")
    assert attack_heading([{"method": "a"}]).startswith("Attack set: not recorded. ")


def test_reference_table_reads_an_older_json_without_the_new_columns(tmp_path):
    ref = tmp_path / "ref"
    write_leaderboard(ref, [_attack("retrain", fc, collapsed=False, reader_disagrees=True) for fc in (0, 1)])
    table = json.loads((ref / "leaderboard.json").read_text())
    new = ("relearn_max", "relearn_area", "relearn_excess", "inversion", "no_forget_data", "null_", "precision",
           "recall", "density", "coverage", "reader_", "collapse", "attack_set", "_median", "_by_class", "_ci_",
           "mmd")
    old = [{k: v for k, v in row.items() if not any(part in k for part in new)} for row in table]
    assert "fid_mean" in old[0] and "kid_mean" in old[0] and "forget_kid_mean" in old[0]
    assert not any("median" in k or "relearn_max" in k or "mmd" in k for k in old[0])
    (ref / "leaderboard.json").write_text(json.dumps(old))
    text = reference_table(ref)
    assert "Attacks:\nAttack set: not recorded." in text
    assert "| retrain | 2 | — | — | — | — | — | — | — |" in text  # every attack column "—"
    # MMD, recall, coverage "—"; KID and time (heavy-tailed, no median in the older table) fall back to mean ± std
    assert "| retrain | 2 | 90.0 ± 0.0 % | — | 0.01 ± 0 | — | — | 0.00 ± 0.00 | 10.00 ± 0.00 |" in text
    assert "| retrain | 2 | 5.0 ± 0.0 % | — | 10.0 ± 0.0 % | 6 2/2 | 95.0 ± 0.0 % | 1.00 ± 0.00 | — |" in text  # f. MMD
    assert "⚑" not in text
