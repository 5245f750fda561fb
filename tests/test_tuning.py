"""The tuning rule picks, per method, the best retained accuracy among settings that forget, else the best UA; the
summary and trade-off figure show the new scores and can be rebuilt from stored records."""

from __future__ import annotations

import json
import math

import pandas as pd

from unlearnbench.orchestration.tuning import (
    _tradeoff_points,
    plot_tradeoff,
    select,
    tradeoff_from_records,
    write_summary,
)


def _grid() -> pd.DataFrame:
    rows = [
        ("a", 1e-5, 0.50, 0.99), ("a", 1e-4, 0.97, 0.90), ("a", 3e-4, 1.00, 0.40),  # forgets at 1e-4 and 3e-4
        ("b", 1e-5, 0.10, 0.99), ("b", 1e-4, 0.60, 0.95), ("b", 3e-4, 0.60, 0.97),  # never forgets
    ]
    return pd.DataFrame([{"method": m, "lr": lr, "status": "ok", "ua": ua, "forget_entropy": 0.1,
                          "retain_accuracy": acc, "fid": 1.0, "seconds": 1.0} for m, lr, ua, acc in rows])


def test_rule_prefers_retained_accuracy_among_forgetting_settings():
    chosen = select(_grid()).set_index("method")
    assert chosen.loc["a", "lr"] == 1e-4
    assert chosen.loc["b", "lr"] == 3e-4  # highest UA, tie broken by retained accuracy


def test_summary_marks_the_choice(tmp_path):
    write_summary(_grid(), tmp_path, "p", 3)
    md = (tmp_path / "summary.md").read_text()
    assert "| a | 0.0001 | 97.0% |" in md and md.count("**yes**") == 2
    assert '"a": {"lr": 0.0001}' in md


def _grid_with_new_fields() -> pd.DataFrame:
    grid = _grid()
    grid["recognised_rate"] = 1 - grid["ua"] + 0.02
    grid["unrecognisable_rate"] = 0.1
    grid["kid"] = 0.004
    grid["relearn_max"] = 0.3
    return grid


def test_summary_shows_the_new_fields_and_writes_the_tradeoff_plot(tmp_path, capsys):
    write_summary(_grid_with_new_fields(), tmp_path, "p", 3)
    md = (tmp_path / "summary.md").read_text()
    assert "| method | lr | recognised ↓ | unrecognisable | UA | H (forget) | retained acc | FID | KID | " \
           "relearned (worst) ↓ | time (s) | chosen |" in md
    assert "| a | 0.0001 | 5.0% | 10.0% | 97.0% | 0.10 | 90.0% | 1.00 | 0.004 | 30.0% | 1.0 | **yes** |" in md
    assert "recognised_rate" in pd.read_csv(tmp_path / "summary.csv").columns
    assert (tmp_path / "tradeoff.png").stat().st_size > 1000


def test_old_grid_without_new_fields_still_summarised_and_plotted(tmp_path):
    write_summary(_grid(), tmp_path, "p", 3)
    md = (tmp_path / "summary.md").read_text()
    assert "recognised" not in md.split("| method |")[1] and "—" not in md  # no empty columns for old records
    assert (tmp_path / "tradeoff.png").stat().st_size > 1000  # falls back to 1 − UA


def test_tradeoff_points_use_recognised_rate_else_one_minus_ua():
    points, label, left_out = _tradeoff_points(_grid_with_new_fields())
    a = points[points.method == "a"].set_index("lr")
    assert list(a.index) == [1e-5, 1e-4, 3e-4] and label.startswith("forget class recognised")
    assert abs(a.loc[1e-4, "y"] - 5.0) < 1e-9 and abs(a.loc[1e-4, "x"] - 90.0) < 1e-9 and left_out == 0
    points, label, _ = _tradeoff_points(_grid())
    assert "1 − UA" in label and abs(points.set_index(["method", "lr"]).loc[("a", 1e-4), "y"] - 3.0) < 1e-9


def test_plot_tradeoff_writes_a_figure(tmp_path):
    plot_tradeoff(_grid_with_new_fields(), tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 1000


def _write_record(folder, name, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    record = {"method": "a", "status": "ok", "forget_class": 3, "seed": 0, "ua": 0.9, "forget_entropy": 0.1,
              "retain_accuracy": 0.8, "fid": 2.0, "total_seconds": 5.0, "finished_at": "2026-01-01T00:00:00+00:00",
              **fields}
    (folder / f"{name}.json").write_text(json.dumps(record))


def test_tradeoff_from_records_rebuilds_the_grid(tmp_path):
    _write_record(tmp_path / "lr1e-4" / "p" / "runs", "a_new", ua=0.97, recognised_rate=0.05, kid=0.01,
                  finished_at="2026-02-01T00:00:00+00:00")
    _write_record(tmp_path / "lr1e-4" / "p" / "runs", "a_stale", ua=0.2)  # same key, finished earlier
    _write_record(tmp_path / "lr1e-4" / "p" / "runs", "b_failed", method="b", status="failed", ua=float("nan"))
    _write_record(tmp_path / "lr3e-5" / "p" / "runs", "a", ua=0.5)  # an old record: no recognised_rate
    _write_record(tmp_path / "lr3e-5" / "p" / "runs", "b", method="b", ua=0.99, retain_accuracy=0.95)
    _write_record(tmp_path / "notes" / "p" / "runs", "x", method="x")  # not an lr folder
    grid = tradeoff_from_records(tmp_path)
    assert sorted(zip(grid.method, grid.lr, strict=True)) == [("a", 3e-5), ("a", 1e-4), ("b", 3e-5)]
    a = grid[grid.method == "a"].set_index("lr")
    assert a.loc[1e-4, "ua"] == 0.97 and a.loc[1e-4, "recognised_rate"] == 0.05 and a.loc[1e-4, "kid"] == 0.01
    assert math.isnan(a.loc[3e-5, "recognised_rate"]) and a.loc[3e-5, "seconds"] == 5.0
    assert set(grid.status) == {"ok"}
    chosen = select(grid).set_index("method")
    assert chosen.loc["a", "lr"] == 1e-4 and chosen.loc["b", "lr"] == 3e-5
    write_summary(grid, tmp_path / "summary", "p", 3)  # redrawn without rerunning
    assert (tmp_path / "summary" / "tradeoff.png").stat().st_size > 1000


def test_ties_in_retained_accuracy_go_to_the_smaller_learning_rate():
    from unlearnbench.orchestration.tuning import select

    rows = [{"method": "m", "lr": lr, "status": "ok", "ua": 1.0, "recognised_rate": 0.0, "retain_accuracy": acc}
            for lr, acc in ((3e-4, 0.05), (3e-5, 0.1138888888888889), (1e-5, 0.11388888888888887), (1e-4, 0.1))]
    assert select(pd.DataFrame(rows)).iloc[0]["lr"] == 1e-5
    none_forget = [{**r, "recognised_rate": 0.5} for r in rows]
    assert select(pd.DataFrame(none_forget)).iloc[0]["lr"] == 1e-5


def test_a_variant_is_tuned_with_its_options_kept_and_the_grids_lr(monkeypatch, tmp_path):
    from unlearnbench.methods.registry import check_method_args, resolve_entry
    from unlearnbench.orchestration import runner

    seen = []

    class FakeRunner:
        def __init__(self, profile):
            check_method_args(profile)  # a variant's name in method_args would be refused here
            seen.append({m: resolve_entry(m, profile) for m in profile.unlearning.methods}
                        | {"args": profile.unlearning.method_args})

        def run(self):
            return []

    monkeypatch.setattr(runner, "BenchmarkRunner", FakeRunner)
    from unlearnbench.orchestration.tuning import run_grid

    run_grid("mnist", ["sa", "sa_lam1"], ["1e-5", "3e-4"], 3, str(tmp_path))
    assert [s["sa_lam1"] for s in seen] == [("sa_lam1", "sa", {"ewc_lambda": 1.0, "lr": lr}) for lr in (1e-5, 3e-4)]
    assert [s["args"]["sa"] for s in seen] == [{"lr": 1e-5}, {"lr": 3e-4}] and "sa_lam1" not in seen[0]["args"]
