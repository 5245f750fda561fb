"""Run and cache keys are made of content and explicit versions, never of the suite's code (issue 18).

The decisive test edits a *copy* of the installed package the way a refactor would (the loader, the file locks,
the CLI, a method's docstring and comments, a stray untracked file) and checks that every run key and the cached
original's and Retrain's keys stay equal, while a bumped method version changes that method's keys only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from unlearnbench.foundation.provenance import PACKAGE_FOLDERS, normalised_source, normalised_source_hash

KEYS_SCRIPT = """
import json
from unlearnbench.foundation.config import load_profile
from unlearnbench.foundation.pretraining import diffusion_cache_key
from unlearnbench.foundation.provenance import code_fingerprint
from unlearnbench.orchestration.runner import BenchmarkRunner

p = load_profile("smoke", ["runtime.cache_dir={cache}", "runtime.progress=false", "runtime.logger=none",
                           "unlearning.methods=[safemax,salun,ga,retrain]", "unlearning.forget_classes=[0,1]"])
specs = BenchmarkRunner(p).validate()[1]
print(json.dumps({{"runs": {{f"{{s.label}}/{{s.forget_class}}": s.key for s in specs}},
                  "original": diffusion_cache_key(p, None, p.seed),
                  "retrain": diffusion_cache_key(p, list(range(1, 10)), p.seed), "code": code_fingerprint()}}))
"""


def package_copy(root: Path) -> Path:
    """The installed package laid out as a plain package under ``root`` (imported first via PYTHONPATH)."""
    target = root / "unlearnbench"
    shutil.copytree(PACKAGE_FOLDERS["unlearnbench"], target, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("datasets", "metrics", "methods"):
        shutil.copytree(PACKAGE_FOLDERS[f"unlearnbench.{name}"], target / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return target


def keys_of(tree_root: Path, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree_root), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", KEYS_SCRIPT.format(cache=cache)], env=env, cwd=tree_root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_refactor_changes_no_key_and_a_version_bump_only_its_methods(tmp_path):
    before_root, after_root = tmp_path / "before", tmp_path / "after"
    package_copy(before_root)
    pkg = package_copy(after_root)
    # a refactor of the loader, the locks, the CLI and the leaderboard; docs and comments of a method; a stray file
    edit(pkg / "foundation" / "config.py", "from __future__ import annotations\n",
         "from __future__ import annotations\n\nLOADER_REFACTORED = True\n")
    edit(pkg / "foundation" / "cache.py", "LOCK_POLL_SECONDS = 0.5", "LOCK_POLL_SECONDS = 0.25")
    edit(pkg / "orchestration" / "cli.py", "from __future__ import annotations\n",
         "from __future__ import annotations\n\nCLI_REFACTORED = 1\n")
    salun = pkg / "methods" / "salun.py"
    salun.write_text(salun.read_text().replace('"""SalUn (Fan', '"""SalUn, reworded (Fan', 1) + "\n# a comment\n")
    (pkg / "methods" / "stray_untracked.py").write_text("X = 1\n")
    before, after = keys_of(before_root, tmp_path / "cache"), keys_of(after_root, tmp_path / "cache")
    assert after["runs"] == before["runs"]
    assert (after["original"], after["retrain"]) == (before["original"], before["retrain"])
    assert after["code"] != before["code"]  # the provenance sees the edits: it is recorded, not keyed

    edit(pkg / "methods" / "salun.py", '@register_method("salun", version=1)', '@register_method("salun", version=2)')
    bumped = keys_of(after_root, tmp_path / "cache")
    changed = {k for k in before["runs"] if bumped["runs"][k] != before["runs"][k]}
    assert changed == {"salun/0", "salun/1"}
    assert (bumped["original"], bumped["retrain"]) == (before["original"], before["retrain"])


def test_normalised_source_ignores_docstrings_comments_and_formatting():
    plain = 'def f(x):\n    return x + 1\n'
    documented = '"""Module doc."""\n\n\ndef f( x ):  # add one\n    """Add one."""\n    return (x +\n            1)\n'
    assert normalised_source(plain) == normalised_source(documented)
    assert normalised_source(plain) != normalised_source(plain.replace("+ 1", "+ 2"))
    assert normalised_source('def f():\n    """Only a docstring."""\n') == normalised_source("def f():\n    pass\n")


def test_a_plugin_is_keyed_by_its_normalised_source(tmp_path, monkeypatch):
    from unlearnbench.orchestration.runner import method_identity

    module = tmp_path / "my_plugin_for_keys.py"
    body = ("from unlearnbench import UnlearningMethod\n\n\nclass Plugin(UnlearningMethod):\n"
            "    {doc}\n    def loss(self, forget_batch, retain_batch):\n        return {expr}\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def identity(doc: str, expr: str) -> dict:
        module.write_text(body.format(doc=doc, expr=expr))
        sys.modules.pop("my_plugin_for_keys", None)
        import my_plugin_for_keys

        return method_identity(my_plugin_for_keys.Plugin)

    first = identity('"""One."""', "self.standard_loss(forget_batch)")
    assert "source" in first and first == identity('"""Another wording."""  # c', "self.standard_loss(forget_batch)")
    assert first != identity('"""One."""', "-self.standard_loss(forget_batch)")
    assert normalised_source_hash(object()) == "unknown"


@pytest.mark.parametrize("name", ["safemax", "retrain", "salun", "rl", "ga", "ft", "sa", "iau", "esd", "o3"])
def test_every_builtin_states_its_own_version(name):
    from unlearnbench.methods import get_method
    from unlearnbench.orchestration.runner import method_identity

    cls = get_method(name)
    assert "version" in vars(cls), f"{cls.__name__} must state its own version in @register_method (not inherit it)"
    assert method_identity(cls) == {"version": cls.version}  # built-ins are keyed by version, not by source
