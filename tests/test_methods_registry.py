"""Registry: built-ins, clear errors, config merging, and plugins by class path and by entry point."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest

from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.methods import (
    ENTRY_POINT_GROUP,
    MethodConfig,
    MethodConfigError,
    MethodError,
    SAFEMax,
    SalUn,
    UnknownMethodError,
    UnlearningMethod,
    available_methods,
    create_method,
    get_method,
    method_config_for,
    register_method,
    run_unlearning,
)
from unlearnbench.methods.registry import BUILTIN_METHODS
from unlearnbench.orchestration.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "examples" / "null_label_plugin"
BUILTINS = set(BUILTIN_METHODS)  # every built-in, so that a new one without documentation fails the check below


@pytest.fixture
def model(profile, data) -> ConditionalDiffusion:
    return ConditionalDiffusion.create(profile.unet, profile.data.image_size, data.channels, data.num_classes)


def test_builtins_are_registered_with_documented_configs():
    """Every built-in: registered under its name, a class docstring, a module docstring whose "Options" section
    names each of its own options (those beyond :class:`MethodConfig`'s), and a row in the README's methods table."""
    assert len(BUILTINS) >= 10 and BUILTINS <= set(available_methods())
    assert get_method("safemax") is SAFEMax and get_method(" salun ") is SalUn
    readme = (ROOT / "README.md").read_text()
    shared = {f.name for f in dataclasses.fields(MethodConfig)}
    for name in sorted(BUILTINS):
        cls = get_method(name)
        assert cls.name == name and issubclass(cls, UnlearningMethod)
        assert (cls.__doc__ or "").strip(), name
        module_doc = sys.modules[cls.__module__].__doc__ or ""
        assert "Options" in module_doc, f"{name}: defaults are not documented"
        own = [f.name for f in dataclasses.fields(cls.Config) if f.name not in shared]
        undocumented = [k for k in own if not re.search(rf"``{k}( = [^`]+)?``", module_doc)]
        assert not undocumented, f"{name}: options {undocumented} are not in its module docstring"
        assert re.search(rf"^\| `{name}` \|", readme, re.MULTILINE), f"{name}: no row in the README's methods table"


def test_unknown_method_lists_what_is_available_and_how_to_add_one():
    with pytest.raises(UnknownMethodError) as err:
        get_method("sallun")
    message = str(err.value)
    assert "sallun" in message and all(name in message for name in BUILTINS)
    assert "pkg.module:" in message or "module:MyMethod" in message
    assert ENTRY_POINT_GROUP in message


def test_unknown_or_badly_typed_option_is_refused_with_the_valid_keys(profile):
    with pytest.raises(MethodConfigError) as err:
        method_config_for("safemax", profile, {"lamda": 2.0})
    message = str(err.value)
    assert "lamda" in message and "lam" in message and "retain_weight" in message and "target" in message
    with pytest.raises(MethodConfigError, match="noise"):
        method_config_for("safemax", profile, {"target": "gaussian"})
    with pytest.raises(MethodConfigError, match="lr"):
        method_config_for("safemax", profile, {"lr": "fast"})
    with pytest.raises(MethodConfigError, match="mask_ratio"):
        method_config_for("salun", profile, {"mask_ratio": 1.5})
    with pytest.raises(MethodConfigError, match="none"):
        method_config_for("retrain", profile, {"lr": 1e-3})
    assert isinstance(MethodConfigError("x"), ValueError)  # the CLI reports ValueErrors cleanly


def test_options_are_typed_by_the_config_library_and_refused_in_one_line(profile):
    """YAML/CLI strings become numbers and an int becomes a float where a float is declared (so ``100`` and
    ``100.0`` resolve to one Config, one run key); a value of another type stops with method, option, type, value."""
    resolved = method_config_for("sa", profile, {"steps_scale": 100, "lr": "3e-5", "replay_per_class": "7"})
    assert (resolved["steps_scale"], resolved["lr"], resolved["replay_per_class"]) == (100.0, 3e-5, 7)
    assert type(resolved["steps_scale"]) is float and type(resolved["replay_per_class"]) is int
    as_float = method_config_for("sa", profile, {"steps_scale": 100.0})
    assert method_config_for("sa", profile, {"steps_scale": 100}) == as_float
    assert method_config_for("safemax", profile, {"grad_clip": None})["grad_clip"] is None  # float | None
    refusals = {("sa", "replay_per_class", 5.5): "sa.replay_per_class: expected int, got 5.5",
                ("sa", "replay_per_class", 5.0): "sa.replay_per_class: expected int, got 5.0",
                ("safemax", "lr", None): "safemax.lr: expected float, got None",
                ("safemax", "lr", True): "safemax.lr: expected float, got True",
                ("iau", "retain_images", "all"): "iau.retain_images: expected int | None, got 'all'",
                ("iau", "form", "sgd"): "iau.form must be one of 'adam', 'paper', got 'sgd'"}
    for (method, option, value), message in refusals.items():
        with pytest.raises(MethodConfigError) as err:
            method_config_for(method, profile, {option: value})
        assert str(err.value) == message


def test_profile_method_args_then_overrides(profile, model, data):
    profile.unlearning.method_args = {"safemax": {"lr": "3e-5", "lam": 2}, "ga": {"alpha": 0.5}}
    assert method_config_for("safemax", profile)["lr"] == 3e-5
    method = create_method("safemax", model, 1, data, profile, seed=7, overrides={"lam": 0.5})
    assert (method.config.lr, method.config.lam, method.config.target) == (3e-5, 0.5, "noise")
    assert method.seed == 7 and method.forget_class == 1 and method.budget is profile.unlearning
    assert method.model is not model
    assert create_method("salun", model, 1, data, profile).config.alpha == 1e-3  # ga's args do not leak
    with pytest.raises(ValueError, match="out of range"):
        create_method("safemax", model, 42, data, profile)


def test_registering_a_taken_name_is_refused():
    with pytest.raises(MethodError, match="already registered"):
        @register_method("safemax")
        class Impostor(UnlearningMethod):
            pass


def test_bad_class_paths_are_explained():
    with pytest.raises(UnknownMethodError, match="cannot import"):
        get_method("no_such_pkg.mod:Thing")
    with pytest.raises(UnknownMethodError, match="no attribute"):
        get_method("unlearnbench.methods.safemax:Nope")
    with pytest.raises(MethodError, match="not a subclass"):
        get_method("unlearnbench.methods.safemax:torch")


def test_class_path_plugin_runs(monkeypatch, model, data, profile):
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    cls = get_method("null_label_plugin.method:NullLabel")
    assert issubclass(cls, UnlearningMethod) and cls.name == "null_label"
    profile.unlearning.method_args = {"null_label_plugin.method:NullLabel": {"alpha": 0.25}}
    method = create_method("null_label_plugin.method:NullLabel", model, 2, data, profile, seed=0)
    assert method.config.alpha == 0.25
    assert run_unlearning(method).steps == profile.unlearning.steps


EP_NAME = "null_label_via_entry_point"  # unique, so an installed copy of the example cannot mask the test


def fake_distribution(root: Path) -> None:
    """What installing examples/null_label_plugin writes: a dist-info with the entry point its pyproject declares."""
    toml = (PLUGIN_DIR / "pyproject.toml").read_text()
    section = toml.split(f'[project.entry-points."{ENTRY_POINT_GROUP}"]', 1)[1]
    line = next(line for line in section.splitlines() if line.startswith("null_label ="))
    target = line.partition("=")[2].strip().strip('"')  # TOML string -> entry_points.txt value
    info = root / "unlearnbench_null_label-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unlearnbench-null-label\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{EP_NAME} = {target}\n")


def test_entry_point_plugin_is_discovered_and_runs(tmp_path, monkeypatch, model, data, profile, capsys):
    assert EP_NAME not in available_methods()
    fake_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert EP_NAME in available_methods()
    assert get_method(EP_NAME).__name__ == "NullLabel"
    assert main(["methods"]) == 0
    assert EP_NAME in capsys.readouterr().out

    profile.unlearning.method_args = {EP_NAME: {"alpha": 0.01}}
    method = create_method(EP_NAME, model, 4, data, profile, seed=0)
    assert method.config.alpha == 0.01
    outcome = run_unlearning(method)
    assert outcome.steps == profile.unlearning.steps and outcome.model is not model


def test_broken_entry_point_names_the_plugin(tmp_path, monkeypatch):
    info = tmp_path / "broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = no_such_module_xyz:Method\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "broken" in available_methods()
    with pytest.raises(MethodError, match="broken.*no_such_module_xyz"):
        get_method("broken")
