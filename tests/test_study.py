"""``unlearnbench study`` on a tiny spec (two sizes, three arms, two of them at the second size, resumable,
summarised, with the capacity study's own report), the generic summary of a spec without a report, the capacity
study's decision rule and the SAFEMax scale study's pre-registered rules."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from unlearnbench.foundation.config import ConfigError, load_profile
from unlearnbench.orchestration import study as study_module
from unlearnbench.orchestration.study import (
    StudySize,
    StudySpec,
    check_one_plan_version,
    load_study,
    run_study,
    signal_window,
    write_summary,
)
from unlearnbench.studies.capacity import decision_table

TINY_SPEC = """
name: tiny
profile: smoke
overrides:
  - runtime.cache_dir={cache}
  - runtime.progress=false
  - runtime.logger=none
  - pretrain.steps=40
  - pretrain.warmup_steps=5
  - unlearning.steps=3
  - unlearning.batch_size=16
  - evaluation.forget_samples=8
  - evaluation.retain_samples_per_class=2
  - evaluation.relearn_steps=0
  - evaluation.relearn_readings=[]
  - evaluation.kid_subsets=5
  - runtime.isolate_runs=false
sizes:
  - {{label: s, overrides: ["unet.block_out_channels=[8,16]", "unet.norm_num_groups=4"], forget_classes: [0, 1]}}
  - {{label: m, overrides: ["unet.block_out_channels=[16,32]"], arms: [safemax, safemax_emb]}}
arms:
  safemax: {{method: safemax}}
  safemax_window: {{method: safemax}}
  safemax_emb: {{method: safemax, trainable: forget_embedding, lr: 0.01}}
signal_arm: safemax_window
signal_images_per_class: 4
report: capacity
"""


@pytest.fixture
def spec_path(tmp_path, session_cache):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPEC.format(cache=session_cache))
    return path


def test_signal_window_is_where_the_mean_signal_is_at_least_half_its_maximum():
    frame = pd.DataFrame({"t": [10, 100, 200, 300, 500, 10, 100, 200, 300, 500],
                          "d_swap": [0.0, 0.2, 1.0, 0.6, 0.1, 0.0, 0.4, 1.0, 0.4, 0.1]})
    assert signal_window(frame, 0.5) == (200, 301)
    assert signal_window(frame, 0.25) == (100, 301)


def test_the_decision_rule_picks_the_best_retained_accuracy_among_forgetting_safemax_arms():
    table = pd.DataFrame([
        {"size": "s", "parameters": 1, "arm": "safemax", "recognised_rate": 0.0, "retain_accuracy": 0.1},
        {"size": "s", "parameters": 1, "arm": "safemax_b", "recognised_rate": 0.04, "retain_accuracy": 0.5},
        {"size": "s", "parameters": 1, "arm": "safemax_c", "recognised_rate": 0.5, "retain_accuracy": 0.9},
        {"size": "s", "parameters": 1, "arm": "salun", "recognised_rate": 0.0, "retain_accuracy": 0.95},
        {"size": "l", "parameters": 9, "arm": "safemax", "recognised_rate": 0.3, "retain_accuracy": 0.9},
    ])
    d = decision_table(table).set_index("size")
    assert d.loc["s", "best_forgetting_safemax_arm"] == "safemax_b" and d.loc["s", "its_retained_accuracy"] == 0.5
    assert d.loc["s", "safemax_arms_that_forget"] == 2 and d.loc["s", "salun_retained_accuracy"] == 0.95
    assert d.loc["l", "best_forgetting_safemax_arm"] == "none forgets"


def test_a_bad_spec_names_the_problem(tmp_path, spec_path):
    with pytest.raises(ConfigError, match="unknown study"):
        load_study("no-such-study")
    with pytest.raises(ConfigError, match="signal_arm"):
        load_study(spec_path, ["signal_arm=nope"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(spec_path.read_text().replace("safemax_emb: {method: safemax, ", "safemax_emb: {"))
    with pytest.raises(ConfigError, match="names no method"):
        load_study(bad)
    with pytest.raises(ConfigError, match=r"size 'm' lists arms \['retrain'\] that the study does not define"):
        load_study(spec_path, ['sizes=[{label: m, arms: [retrain]}]'])
    with pytest.raises(ConfigError, match="cannot import its report module 'unlearnbench.studies.nope'"):
        load_study(spec_path, ["report=nope"])
    with pytest.raises(ConfigError, match="has no write_report"):
        load_study(spec_path, ["report=unlearnbench.orchestration.tuning"])
    assert load_study("capacity").report == "capacity"


def test_a_point_on_other_data_has_its_own_base_profile():
    spec = load_study("safemax-scale")
    sizes = {s.label: s for s in spec.sizes}
    fashion = study_module.size_profile(spec, sizes["fashion28-0.27M-2k"])
    mnist = study_module.size_profile(spec, sizes["mnist28-0.27M-2k"])
    assert (fashion.data.source, fashion.data.image_size, mnist.data.source) == ("fashion-mnist", 28, "mnist")
    assert fashion.classifier == load_profile("fashion").classifier  # the garments' floors, not the digits'
    assert fashion.evaluation == mnist.evaluation  # the same (full) attack set and reduced counts


def _summary_rows(arm: str, recognised: float, retained: float, classes=(0, 1)) -> list[dict]:
    return [{"size": "s", "parameters": 1000, "arm": arm, "forget_class": c, "seed": 0, "code": "abc",
             "recognised_rate": recognised, "unrecognisable_rate": 0.0, "retain_accuracy": retained, "kid": 0.01,
             "unlearn_seconds": 2.0} for c in classes]


def test_points_not_started_are_skipped_by_the_summary(tmp_path):
    """Issue 20 (2026-11-30): the summary after the first point read every point, so it stopped on the 28 px points'
    missing yardsticks and made empty folders for the points not started."""
    spec = load_study("safemax-scale", [f"output_dir={tmp_path}"])
    assert study_module.collect(spec).empty
    assert list(tmp_path.iterdir()) == []


def test_a_point_without_its_yardstick_names_the_command_that_makes_it(tmp_path, spec_path):
    """A point's profile exists only in its study, so the command to make its yardstick names the point's base
    profile and settings."""
    spec = load_study(spec_path, [f"output_dir={tmp_path}", 'sizes=[{label: px12, overrides: ["data.image_size=12"]}]'])
    with pytest.raises(ConfigError, match=r"point px12: no evaluation networks \(yardstick\) for digits at 12px: .*"
                       r"`unlearnbench yardstick --profile smoke --set data.image_size=12` trains it once"):
        run_study(spec)


def test_a_spec_without_a_report_gets_the_generic_summary_only_and_the_capacity_report_adds_its_own(tmp_path):
    table = pd.DataFrame(_summary_rows("safemax", 0.02, 0.5) + _summary_rows("salun", 0.0, 0.9))
    plain = StudySpec(name="plain", sizes=[StudySize("s")], arms={"safemax": {"method": "safemax"}},
                      output_dir=str(tmp_path / "plain"))
    write_summary(plain, table)
    text = (tmp_path / "plain" / "summary.md").read_text()
    assert text.endswith("|---|---|---|---|---|---|---|---|\n| s | safemax | 2.0% | 0.0% | 50.0% | 0.01 | 2 | 2 |\n"
                         "| s | salun | 0.0% | 0.0% | 90.0% | 0.01 | 2 | 2 |\n")
    assert "Code fingerprint of the records: s `abc`." in text and "Decision" not in text
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["report.html", "summary.csv", "summary.md"]
    page = (tmp_path / "plain" / "report.html").read_text()  # the study's page: its table, sortable
    assert '<table class="sortable" id="summary">' in page and '<td data-sort="0.9">90.0%</td>' in page

    capacity = StudySpec(name="cap", sizes=[StudySize("s")], arms={"safemax": {"method": "safemax"}},
                         output_dir=str(tmp_path / "cap"), report="capacity")
    write_summary(capacity, table)
    text = (tmp_path / "cap" / "summary.md").read_text()
    assert text.startswith("# Study cap: means over forget classes")
    assert text.endswith("\n\n## Decision rule (pre-registered): best retained accuracy among SAFEMax arms with "
                         "recognised ≤ 5%\n\n| size | parameters | best SAFEMax arm | its retained acc | SAFEMax arms "
                         "that forget | SalUn retained (recognised) | original retained |\n"
                         "|---|---|---|---|---|---|---|\n| s | 0.00M | safemax | 50.0% | 1/1 | 90.0% (0.0%) | nan% |\n")
    assert (tmp_path / "cap" / "capacity.png").stat().st_size > 1000


def test_a_redraw_refuses_records_of_several_plan_versions(tmp_path):
    record = {"method": "safemax", "forget_class": 0, "seed": 0, "protocol_key": "p1", "code_fingerprint": "a"}
    check_one_plan_version([record, {**record, "forget_class": 1, "code_fingerprint": "b"}], tmp_path)  # code: fine
    with pytest.raises(ConfigError, match="several settings or versions"):
        check_one_plan_version([record, {**record, "forget_class": 1, "protocol_key": "p2"}], tmp_path)
    with pytest.raises(ConfigError, match="recorded more than once"):
        check_one_plan_version([record, {**record, "run_key": "other version"}], tmp_path)


def test_a_study_runs_every_size_and_arm_once_resumes_and_summarises(tmp_path, spec_path, monkeypatch):
    spec = load_study(spec_path, [f"output_dir={tmp_path / 'out'}"])
    table = run_study(spec)
    out = tmp_path / "out"
    # size s: 2 forget classes x (original + 3 arms); size m: 1 x (original + its 2 arms)
    assert len(table) == 11 and set(table["arm"]) == {"original", "safemax", "safemax_window", "safemax_emb"}
    assert set(table[table["size"] == "m"]["arm"]) == {"original", "safemax", "safemax_emb"}
    assert table.groupby("size")["parameters"].first()["s"] < table.groupby("size")["parameters"].first()["m"]
    window = table[table["arm"] == "safemax_window"]["window"].iloc[0]
    signal = pd.read_csv(out / "tiny-s" / "class-signal" / "class_signal.csv")
    assert tuple(window) == signal_window(signal, 0.5)
    record = json.loads(next((out / "tiny-s" / "runs").glob("safemax_window__f0*.json")).read_text())
    options = json.loads(record["method_config"])
    assert (options["t_min"], options["t_max"]) == tuple(window)
    for name in ("summary.csv", "summary.md", "capacity.png", "study.json"):
        assert (out / name).is_file(), name
    assert "Decision rule" in (out / "summary.md").read_text()

    # resumed: nothing is recomputed (no method and no class-signal measurement runs again)
    def refuse(*args, **kwargs):
        raise AssertionError("a finished study recomputed something")

    monkeypatch.setattr("unlearnbench.orchestration.runner.BenchmarkRunner.run_one", refuse)
    monkeypatch.setattr("unlearnbench.metrics.class_signal.measure_original", refuse)
    again = run_study(spec)
    assert len(again) == 11
    assert study_module.collect(spec).equals(again)
    meta = json.loads((out / "tiny-s" / "class-signal" / "class_signal.json").read_text())
    assert meta["class_signal_version"] == 1 and "original" in meta["original_identity"]
    assert "code" not in meta and meta["code_fingerprint"]  # provenance, not the key
    # a new version of the class-signal measurement measures the curves again
    monkeypatch.setattr("unlearnbench.metrics.class_signal.CLASS_SIGNAL_VERSION", 2)
    with pytest.raises(AssertionError, match="recomputed"):
        study_module.class_signal_for(spec, study_module.size_profile(spec, spec.sizes[0]))
    monkeypatch.undo()

    # after a protocol change the plan's keys differ: a run would recompute, a redraw (--summary-only) reads the
    # records by arm, class and seed and names their code
    monkeypatch.setattr("unlearnbench.orchestration.runner.PROTOCOL_VERSION", -1)
    assert study_module.collect(spec).empty
    redrawn = run_study(spec, summary_only=True)
    assert len(redrawn) == 11 and redrawn["code"].nunique() == 1
    assert "Code fingerprint of the records" in (out / "summary.md").read_text()

    # running one point after that change keeps the other points' rows, read as the redraw reads them (a point's
    # run used to rewrite the summary with its own point alone); the point being run counts its current keys only
    monkeypatch.setattr("unlearnbench.orchestration.runner.BenchmarkRunner.run", lambda self: None)
    after_point = run_study(spec, sizes=["m"])
    assert len(after_point) == 8 and set(after_point["size"]) == {"s"}
    assert pd.read_csv(out / "summary.csv")["size"].eq("s").sum() == 8


def test_the_safemax_scale_rules_read_r_the_transition_and_the_question_as_pre_registered(tmp_path):
    from unlearnbench.studies import safemax_scale

    spec = load_study("safemax-scale")
    assert safemax_scale.grid_lrs(spec) == {"safemax_lr1e-7": 1e-7, "safemax_lr3e-7": 3e-7, "safemax_lr1e-6": 1e-6,
                                            "safemax_lr3e-6": 3e-6, "safemax": 1e-5, "safemax_lr3e-5": 3e-5}

    def point(size, cells, retrain=True):
        rows = [("original", 1.0, 0.97, float("nan"), False), ("salun", 0.0, 0.95, 0.0, False), *cells]
        rows += [("retrain", 0.0, 0.96, 0.0, False)] if retrain else []
        return [{"size": size, "parameters": 1000, "arm": a, "forget_class": c, "recognised_rate": rec,
                 "retain_accuracy": ret, "relearn_excess": exc, "collapsed": col, "relearn_max": 0.5,
                 "inversion_recognised": 0.25}
                for a, rec, ret, exc, col in rows for c in (0, 1, 2)]

    table = pd.DataFrame(
        point("mnist16-0.27M-2k", [("safemax_lr3e-7", 0.9, 0.97, 0.0, False), ("safemax", 0.0, 0.12, 0.9, True)])
        + point("mnist16-0.27M-8k", [("safemax_lr3e-7", 0.5, 0.97, 0.0, False),
                                     ("safemax_lr1e-6", 0.04, 0.90, 0.05, False),  # a window, and the answer
                                     ("safemax", 0.0, 0.40, 0.0, False)])
        + point("mnist16-0.27M-32k", [("safemax_lr1e-6", 0.02, 0.96, float("nan"), False)], retrain=False)
        + point("mnist16-1.06M-2k", [("safemax_lr3e-7", 0.2, 0.5, 0.0, False), ("safemax", 0.3, 0.2, 0.0, False)]))
    points = safemax_scale.point_table(spec, table).set_index("point")
    assert points.loc["mnist16-0.27M-2k", "best_arm"] == "safemax" and points.loc["mnist16-0.27M-2k", "R"] == 0.12
    assert points.loc["mnist16-0.27M-2k", "answer"] == "no"
    assert points.loc["mnist16-0.27M-8k", "answer"] == "yes"
    assert safemax_scale.window_text(points.loc["mnist16-0.27M-8k"]) == "window [1e-06, 1e-05)"
    assert points.loc["mnist16-0.27M-32k", "answer"] == "yes, without a Retrain reference"
    assert points.loc["mnist16-1.06M-2k", "best_arm"] == "none forgets"
    assert safemax_scale.window_text(points.loc["mnist16-1.06M-2k"]).startswith("no forgetting in G")
    assert safemax_scale.window_text(points.loc["mnist16-0.27M-2k"]) == "no window (forgets at 1e-05, lost at 1e-05)"
    # lost at G's smallest lr: extend once downwards; lost there too: no window, and no second extension asked for
    lost_at_start = points.loc["mnist16-0.27M-2k"].copy()
    lost_at_start["retention_lost"] = 3e-7
    assert safemax_scale.window_text(lost_at_start) == "retention lost at G's smallest lr: extend downwards"
    lost_at_start["retention_lost"], lost_at_start["grid"] = 1e-7, (1e-7, 3e-5)
    assert safemax_scale.window_text(lost_at_start) == ("no window (forgets at 1e-05; retention lost already at 1e-07, "
                                                        "G extended once downwards)")
    # an extension that brackets the transition is still named
    lost_at_start["retention_lost"] = 3e-7
    assert safemax_scale.window_text(lost_at_start) == ("no window (forgets at 1e-05, lost at 3e-07, "
                                                        "G extended once downwards to 1e-07)")
    lost_at_start["forgetting_starts"], lost_at_start["retention_lost"] = 1e-7, 1e-6
    assert safemax_scale.window_text(lost_at_start) == "window [1e-07, 1e-06); G extended once downwards to 1e-07"
    no_forgetting = points.loc["mnist16-1.06M-2k"].copy()
    no_forgetting["grid"] = (3e-7, 1e-4)
    assert safemax_scale.window_text(no_forgetting) == "no forgetting in G extended once upwards (to 0.0001)"
    never_lost = points.loc["mnist16-0.27M-8k"].copy()
    never_lost["retention_lost"] = float("nan")
    assert safemax_scale.window_text(never_lost) == "window from 1e-06 (retention never lost in G)"
    never_lost["grid"] = (1e-7, 3e-5)
    assert safemax_scale.window_text(never_lost) == ("window from 1e-06 (retention never lost in G; G extended once "
                                                     "downwards to 1e-07)")
    # every arm per point, as the README's tables: the attack columns over the runs that did not collapse
    tables = safemax_scale.arm_tables(spec, table)
    assert tables.startswith("### mnist16-0.27M-2k") and tables.count("### ") == 4
    assert tables.index("| original ") < tables.index("| Retrain ") < tables.index("| G, lr 3e-7 ") < tables.index(
        "| G, lr 1e-5 (the default) ") < tables.index("| SalUn ")
    assert "| G, lr 1e-5 (the default) | 0 % | 12.0 % | (collapsed) |  |  | 3/3 |" in tables
    assert "| Retrain | 0 % | 96.0 % | 50.0 % | (reference) | 25.0 % | 0/3 |" in tables
    assert "| G, lr 1e-6 | 4.0 % | 90.0 % | 50.0 % | +5.0 pp | 25.0 % | 0/3 |" in tables
    assert "| G, lr 1e-6 | 2.0 % | 96.0 % | 50.0 % | (no Retrain) | 25.0 % | 0/3 |" in tables  # the 32k point
    assert safemax_scale.arm_label(spec, "safemax_lr1e-7", safemax_scale.grid_lrs(spec)) == "G, lr 1e-7 (extension)"
    assert safemax_scale.percent_cell(-0.031, " pp", signed=True) == "−3.1 pp"
    assert safemax_scale.percent_cell(1.0) == "100 %" and safemax_scale.percent_cell(0.0004) == "0 %"
    verdicts = safemax_scale.verdicts(points.reset_index())
    assert verdicts == {"H5": "confirmed", "H1′": "not run yet (mnist16-4.24M-2k)", "H6": "not run yet"}
    # R of 32k 4 pp above 8k's: not a rise, so H5 is not settled; R below 30 % everywhere refutes it
    table.loc[(table["size"] == "mnist16-0.27M-32k") & (table["arm"] == "safemax_lr1e-6"), "retain_accuracy"] = 0.94
    assert safemax_scale.verdicts(safemax_scale.point_table(spec, table))["H5"] == "not settled"
    table.loc[table["arm"].str.startswith("safemax"), "retain_accuracy"] = 0.2
    assert safemax_scale.verdicts(safemax_scale.point_table(spec, table))["H5"] == "refuted"
    text = safemax_scale.write_report(dataclasses.replace(spec, output_dir=str(tmp_path)), table)
    assert "Verdicts: **H5** refuted" in text and (tmp_path / "safemax-scale.png").is_file()
    assert "## Every arm per point" in text
