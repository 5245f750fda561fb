"""The tuning rule picks, per method, the best retained accuracy among settings that forget, else the best UA."""

from __future__ import annotations

import pandas as pd

from benchmark.orchestration.tuning import select, write_summary


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
