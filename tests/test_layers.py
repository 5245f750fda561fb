"""Each module sits in the layer of its role and imports only from earlier layers (read from the source, so a lazy
import inside a function counts too): ``datasets`` → ``foundation`` → (``metrics`` | ``methods``, which never import
each other) → ``orchestration`` → ``studies``."""

from __future__ import annotations

import ast

import pytest

from unlearnbench.foundation.provenance import _suite_modules

LAYERS = {"unlearnbench.datasets": 0, "unlearnbench.foundation": 1, "unlearnbench.metrics": 2,
          "unlearnbench.methods": 2, "unlearnbench.orchestration": 3, "unlearnbench.studies": 4}


def layer_of(module: str) -> str | None:
    return next((name for name in sorted(LAYERS, key=len, reverse=True)
                 if module == name or module.startswith(name + ".")), None)


def imports_of(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def violations() -> list[str]:
    out = []
    for module, path in _suite_modules().items():
        mine = layer_of(module)
        if mine is None:
            continue
        for imported in sorted(imports_of(path)):
            theirs = layer_of(imported)
            if theirs is None or theirs == mine:
                continue
            if LAYERS[theirs] >= LAYERS[mine]:  # a later layer, or the sibling (metrics ↔ methods)
                out.append(f"{module} ({mine}) imports {imported} ({theirs})")
    return out


def test_no_module_imports_from_a_later_layer_and_metrics_and_methods_are_apart():
    assert violations() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from unlearnbench.methods.base import UnlearningMethod\n")
    monkeypatch.setattr(f"{__name__}._suite_modules", lambda: {"unlearnbench.metrics.bad": bad})
    assert violations() == ["unlearnbench.metrics.bad (unlearnbench.metrics) imports unlearnbench.methods.base "
                            "(unlearnbench.methods)"]


@pytest.mark.parametrize("module", ["unlearnbench.foundation.cost", "unlearnbench.metrics.class_signal",
                                    "unlearnbench.methods.isolation"])
def test_moved_modules_sit_in_their_layer(module):
    assert module in _suite_modules()
