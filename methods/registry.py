"""Method registry: built-ins by name, third-party plugins by class path or Python entry point.

* Built-ins are listed in ``BUILTIN_METHODS`` (name → ``module:Class``) and imported on first use; each
  registers itself with ``@register_method("name", version=N)``. Listing them (``unlearnbench methods``) reads their
  docstrings from source without importing torch.
* A plugin is used by class path, ``--methods my_pkg.module:MyMethod``, with nothing installed, or
* declared as an entry point in group ``unlearnbench.methods`` of an installed distribution::

      [project.entry-points."unlearnbench.methods"]
      my_method = "my_pkg.module:MyMethod"

  after which it is listed by ``unlearnbench methods`` and usable by name (a built-in of the same name wins).

Hyper-parameters come from the method's ``Config`` dataclass defaults, then ``unlearning.method_args[name]`` of
the profile, then explicit overrides, each value typed by the config library (jsonargparse, as profiles are) from
the ``Config``'s annotations; an unknown key is refused with the valid keys, a badly typed value in one line
naming method, option, expected type and value.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin, get_type_hints

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser

    from unlearnbench.datasets import UnlearningDataModule
    from unlearnbench.foundation.config import Profile
    from unlearnbench.foundation.diffusion import ConditionalDiffusion
    from unlearnbench.methods.base import UnlearningMethod, UnlearningOutcome

ENTRY_POINT_GROUP = "unlearnbench.methods"
PLUGIN_HINT = (f"add your own as a class path (--methods my_pkg.module:MyMethod) or as an entry point in group "
               f"{ENTRY_POINT_GROUP!r} (README, 'Adding a method as a plugin'; example in examples/)")

BUILTIN_METHODS = {
    "safemax": "unlearnbench.methods.safemax:SAFEMax",
    "retrain": "unlearnbench.methods.retrain:Retrain",
    "salun": "unlearnbench.methods.salun:SalUn",
    "rl": "unlearnbench.methods.random_label:RandomLabel",
    "ga": "unlearnbench.methods.gradient_ascent:GradientAscent",
    "ft": "unlearnbench.methods.finetune:FineTune",
    "sa": "unlearnbench.methods.selective_amnesia:SelectiveAmnesia",
    "iau": "unlearnbench.methods.iau:IAU",
    "esd": "unlearnbench.methods.esd:ESD",
    "o3": "unlearnbench.methods.orthogonal_lora:OrthogonalLoRA",
}

_REGISTRY: dict[str, type[UnlearningMethod]] = {}


class MethodError(ValueError):
    """A method that cannot be found or loaded."""


class UnknownMethodError(MethodError):
    """No built-in, entry point or class path of that name."""


class MethodConfigError(MethodError):
    """A method option that does not exist or has the wrong type."""


def register_method(name: str, version: int | None = None
                    ) -> Callable[[type[UnlearningMethod]], type[UnlearningMethod]]:
    """Class decorator: make a method available under ``name`` (and set its ``name`` attribute).

    ``version``: the version of the method's numbers, set on the class (``cls.version``), part of its run keys.
    Every built-in states it here; bump it when ``tests/test_pinned_numbers.py`` says the method's numbers changed.
    """

    def decorate(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
        _check_method_class(cls, name)
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise MethodError(f"method name {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.name = name
        if version is not None:
            cls.version = int(version)
        _REGISTRY[name] = cls
        return cls

    return decorate


def _check_method_class(obj: Any, source: str) -> type[UnlearningMethod]:
    from unlearnbench.methods.base import UnlearningMethod

    if not (isinstance(obj, type) and issubclass(obj, UnlearningMethod)):
        raise MethodError(f"{source!r} is {obj!r}, not a subclass of methods.UnlearningMethod")
    if not dataclasses.is_dataclass(obj.Config):
        raise MethodError(f"{source!r}: {obj.__qualname__}.Config must be a dataclass of hyper-parameters")
    return obj


def _plugin_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load_class_path(path: str) -> type[UnlearningMethod]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise UnknownMethodError(f"class path {path!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise UnknownMethodError(f"cannot import module {module_name!r} of method {path!r}: {err} "
                                 "(is the package installed or on PYTHONPATH?)") from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UnknownMethodError(f"module {module_name!r} has no attribute {attr!r} (method {path!r})")
        obj = getattr(obj, part)
    return _check_method_class(obj, path)


def get_method(name: str) -> type[UnlearningMethod]:
    """The method class for a registered name, an entry-point name or a class path ``pkg.module:Class``."""
    name = name.strip()
    if ":" in name:
        return _load_class_path(name)
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in BUILTIN_METHODS:
        importlib.import_module(BUILTIN_METHODS[name].partition(":")[0])  # registers itself
        return _REGISTRY[name]
    plugins = _plugin_entry_points()
    if name in plugins:
        try:
            obj = plugins[name].load()
        except Exception as err:
            raise MethodError(f"plugin method {name!r} (entry point {plugins[name].value!r}) failed to load: "
                              f"{type(err).__name__}: {err}") from err
        return _check_method_class(obj, f"{name} = {plugins[name].value}")
    raise UnknownMethodError(f"unknown method {name!r}; available: {', '.join(available_methods())}; "
                             + PLUGIN_HINT)


def available_methods() -> list[str]:
    """Names of the built-in methods and of the installed entry-point plugins, sorted (nothing is imported)."""
    return sorted(set(_REGISTRY) | set(BUILTIN_METHODS) | set(_plugin_entry_points()))


def canonical_name(name: str) -> str:
    """One name per method class: its registered name when that name resolves to the same class, else its class
    path. ``unlearnbench.methods.safemax:SAFEMax`` and ``safemax`` are one method, and one leaderboard row."""
    cls = get_method(name)
    if cls.name:
        try:
            if get_method(cls.name) is cls:
                return cls.name
        except MethodError:
            pass
    return f"{cls.__module__}:{cls.__qualname__}"


def method_summary(name: str) -> str:
    """The first line of a method's class docstring, read from its source file without importing it."""
    plugins = _plugin_entry_points()
    target = BUILTIN_METHODS.get(name) or (plugins[name].value if name in plugins else None)
    if target is None or name in _REGISTRY:
        doc = (get_method(name).__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""
    module_name, _, attr = target.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
        tree = ast.parse(open(spec.origin).read()) if spec and spec.origin else None
    except (ImportError, OSError, SyntaxError, ValueError):
        tree = None
    for node in tree.body if tree else []:
        if isinstance(node, ast.ClassDef) and node.name == attr.split(".")[-1]:
            doc = (ast.get_docstring(node) or "").strip()
            return doc.splitlines()[0] if doc else ""
    return f"({target})"


# -- configuration ---------------------------------------------------------------------------------------------
@functools.cache
def _options_parser(config_cls: type) -> ArgumentParser:
    """A jsonargparse parser of a ``Config`` dataclass's init fields, typed by their annotations (built once)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False, default_env=False)
    parser.add_class_arguments(config_cls)
    return parser


def _typed_option(method: str, config_cls: type, key: str, value: Any) -> Any:
    """``value`` as the type of option ``key`` of ``config_cls`` (jsonargparse: YAML/CLI strings such as '3e-5'
    become numbers, an int becomes a float where a float is declared). Raises MethodConfigError in one line naming
    the method, the option, the declared type and the value."""
    from jsonargparse import ArgumentError

    hint = get_type_hints(config_cls).get(key, Any)
    expected = (f" must be one of {', '.join(map(repr, get_args(hint)))}" if get_origin(hint) is Literal
                else f": expected {inspect.formatannotation(hint)}")
    refused = MethodConfigError(f"{method}.{key}{expected}, got {value!r}")
    if value is None:  # jsonargparse reads None as "not given"; only an annotation that admits None accepts it
        if hint is Any or type(None) in get_args(hint):
            return None
        raise refused
    try:
        return _options_parser(config_cls).parse_object({key: value})[key]
    except ArgumentError:
        raise refused from None


def build_config(cls: type[UnlearningMethod], values: Mapping[str, Any] | None = None, method: str = "") -> Any:
    """``cls.Config`` with ``values`` applied, each typed by the config library (:func:`_typed_option`); unknown
    keys, badly typed values and values the Config itself refuses raise MethodConfigError."""
    method = method or cls.name or cls.__qualname__
    fields = {f.name: f for f in dataclasses.fields(cls.Config) if f.init}
    values = dict(values or {})
    unknown = sorted(set(values) - set(fields))
    if unknown:
        valid = ", ".join(f"{k} (default {_default(f)!r})" for k, f in fields.items()) or "none"
        raise MethodConfigError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for method "
                                f"{method!r}; valid options: {valid}")
    kwargs = {k: _typed_option(method, cls.Config, k, v) for k, v in values.items()}
    try:
        return cls.Config(**kwargs)
    except (TypeError, ValueError) as err:
        raise MethodConfigError(f"invalid options for method {method!r}: {err}") from err


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return "required"


def _profile_args(name: str, cls: type[UnlearningMethod], profile: Profile) -> dict[str, Any]:
    """``unlearning.method_args`` for the method: under its registered name, then under the name as given."""
    args = profile.unlearning.method_args
    merged: dict[str, Any] = {}
    for key in dict.fromkeys([cls.name, name]):
        if key and key in args:
            merged.update(args[key] or {})
    return merged


def method_config_for(name: str, profile: Profile, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The resolved hyper-parameters of a method as a plain dict (part of every run's key)."""
    cls = get_method(name)
    config = build_config(cls, {**_profile_args(name, cls, profile), **(overrides or {})}, name)
    return dataclasses.asdict(config)


def check_method_args(profile: Profile) -> None:
    """Every key of ``unlearning.method_args`` must name a known method (a typo would be silently ignored), and
    every ``unlearning.variants`` entry a known base method with valid options. Raises MethodConfigError."""
    u = profile.unlearning
    for key in u.method_args:
        try:
            get_method(key)
        except UnknownMethodError as err:
            raise MethodConfigError(f"unlearning.method_args names {key!r}, which is not a method ({err}). "
                                    "Fix the name, or remove the entry") from None
    for label, spec in u.variants.items():
        if label in available_methods():
            raise MethodConfigError(f"unlearning.variants: {label!r} is already a method name; give the variant "
                                    "another name (e.g. safemax_fld0.1)")
        if "method" not in (spec or {}):
            raise MethodConfigError(f"unlearning.variants.{label} needs a 'method' key naming its base method, "
                                    "e.g. {method: safemax, forget_label_dropout: 0.1}")
        method_config_for(spec["method"], profile, {k: v for k, v in spec.items() if k != "method"})


def resolve_entry(entry: str, profile: Profile) -> tuple[str, str, dict[str, Any]]:
    """An entry of ``unlearning.methods`` as (row label, canonical method name, option overrides): a variant name
    resolves to its base method and options; a method (by name or class path) to its canonical name."""
    spec = profile.unlearning.variants.get(entry)
    if spec is not None:
        return entry, canonical_name(spec["method"]), {k: v for k, v in spec.items() if k != "method"}
    name = canonical_name(entry)
    return name, name, {}


def create_method(name: str, original: ConditionalDiffusion, forget_class: int, data: UnlearningDataModule,
                  profile: Profile, *, seed: int | None = None, overrides: Mapping[str, Any] | None = None,
                  forgotten_before: Sequence[int] = ()) -> UnlearningMethod:
    """Instantiate a method with its Config = defaults ← ``profile.unlearning.method_args[name]`` ← ``overrides``.

    ``seed``: the run seed (default: the profile's). ``forgotten_before``: the classes earlier requests of a
    continual sequence removed (``original`` is then the model after them); they are excluded from the retained
    classes like c_f.
    """
    cls = get_method(name)
    config = build_config(cls, {**_profile_args(name, cls, profile), **(overrides or {})}, name)
    if not forgotten_before:  # a plugin written before continual requests need not accept the argument
        return cls(original, forget_class, data, config, profile.unlearning, profile, seed=seed)
    return cls(original, forget_class, data, config, profile.unlearning, profile, seed=seed,
               forgotten_before=forgotten_before)


def unlearn(name: str, original: ConditionalDiffusion, forget_class: int, data: UnlearningDataModule,
            profile: Profile, logger: Any = False, *, seed: int | None = None,
            overrides: Mapping[str, Any] | None = None, forgotten_before: Sequence[int] = ()) -> UnlearningOutcome:
    """:func:`create_method` (same arguments) and run it inside one memory window: what the runner calls.

    The shared inputs (the original, the data and its forget/retain sets) exist before the window opens, so the
    peak memory is what the method itself allocates: its model copy, optimiser state, activations, extra batches,
    masks (:mod:`unlearnbench.foundation.cost`). Times come from :meth:`UnlearningMethod.run`.
    """
    from unlearnbench.foundation.cost import peak_memory
    from unlearnbench.foundation.trainer import pick_device

    data.forget_dataset(forget_class)  # the shared inputs exist before the memory window opens
    data.subset(data.classes_except(forget_class, *forgotten_before))
    with peak_memory(pick_device(profile.runtime)) as memory:
        method = create_method(name, original, forget_class, data, profile, seed=seed, overrides=overrides,
                               forgotten_before=forgotten_before)
        outcome = method.run(logger)
    if outcome.peak_memory_mb is None:
        outcome.peak_memory_mb, outcome.memory_kind = memory.peak_memory_mb, memory.memory_kind
        method.record_memory(memory)
    return outcome
