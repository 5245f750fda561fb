"""One installed namespace: stand-in distributions named ``datasets``, ``metrics`` and ``benchmark`` (as Hugging
Face's ``datasets`` would be) live in the same environment as the suite, and neither breaks the other."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

STAND_INS = ("datasets", "metrics", "benchmark")

CHECK = textwrap.dedent("""
    import importlib.metadata as md
    import datasets, metrics, benchmark
    assert all(m.STAND_IN for m in (datasets, metrics, benchmark)), "a stand-in was shadowed"
    assert md.version("datasets") == "99.0.0"
    from unlearnbench import Batch, MethodConfig, UnlearningMethod, Evaluator, load_profile
    from unlearnbench.datasets import UnlearningDataModule
    from unlearnbench.methods import get_method
    from unlearnbench.orchestration.cli import main
    import unlearnbench.datasets, unlearnbench.metrics.evaluator
    assert unlearnbench.datasets.__name__ == "unlearnbench.datasets" and not hasattr(datasets, "UnlearningDataModule")
    assert issubclass(get_method("salun"), UnlearningMethod)
    data = UnlearningDataModule(load_profile("smoke").data)
    assert data.num_classes == 10
    assert main(["methods"]) == 0
    import datasets as again
    assert again is datasets, "the suite replaced the stand-in"
    print("ok")
""")


def test_stand_in_distributions_named_like_the_folders_break_neither(tmp_path):
    site = tmp_path / "site"
    for name in STAND_INS:
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("STAND_IN = True\n")
        info = site / f"{name}-99.0.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 99.0.0\n")
        (info / "RECORD").write_text("")
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
    assert "salun" in out.stdout  # `unlearnbench methods` listed the built-ins


def test_plugins_need_only_the_unlearnbench_namespace():
    import unlearnbench

    for name in ("UnlearningMethod", "MethodConfig", "Batch", "register_method", "ConditionalDiffusion",
                 "UnlearningDataModule", "Evaluator", "load_profile"):
        assert name in unlearnbench.__all__ and getattr(unlearnbench, name) is not None
