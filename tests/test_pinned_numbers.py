"""Versions you cannot forget to bump: pinned digests of every built-in method, the evaluator and pretraining.

Run keys hold versions, not code (:mod:`unlearnbench.foundation.provenance`). What keeps a version honest is this
file: each number-making part runs a few steps on the tiny profile (seed 0, one thread) and the sha256 of what it
made is compared with ``tests/pinned_numbers.json``:

- every built-in method: its weights after 3 steps at batch 16 from a fixed randomly initialised original (so a
  change of pretraining does not move them), pinned with the method's ``version``;
- the evaluator (``PROTOCOL_VERSION``): its samples of that model and its scores of fixed images (real test digits,
  blank, noise) for one forget class, every attack included; times are left out;
- pretraining (``RECIPE_VERSION``): the EMA weights after 6 steps.

A moved digest fails in one line, naming the version to bump. To re-pin after a deliberate change (with the
version bumped): ``UNLEARNBENCH_REPIN=1 pytest tests/test_pinned_numbers.py`` on each platform pinned.

The digests hold for the *numerics platform* they were pinned on (:func:`numerics_platform`: the torch version, the
CPU kernels torch dispatches to and the CPU's vendor, whose MKL and oneDNN paths round differently); on another
platform the tests skip and say so. Measured 2026-12-01: the same code moved every digest on an AMD EPYC (AVX2)
against the Intel Xeon ones. Those were pinned before platforms were recorded; their label ("AVX512",
"GenuineIntel") was assigned then from the records' CPU name, and if it is wrong there the tests skip, never fail.
Pinned 2026-12-02 on an AMD EPYC whose torch dispatches AVX-512 kernels (a Zen 5), with code ``07ec00c41166ccc0``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.provenance import tensors_hash
from unlearnbench.methods import create_method, get_method, run_unlearning
from unlearnbench.methods.registry import BUILTIN_METHODS

PINNED = Path(__file__).with_name("pinned_numbers.json")
REPIN = os.environ.get("UNLEARNBENCH_REPIN") == "1"
FORGET = 0


def numerics_platform() -> str:
    """What makes the same code round the same way: torch's version, the CPU kernels it dispatches to
    (``torch.backends.cpu.get_cpu_capability()``) and the CPU's vendor (``vendor_id``; the machine type elsewhere)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    vendor = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("vendor_id")),
                  platform.machine())
    return f"torch {torch.__version__}, CPU kernels {torch.backends.cpu.get_cpu_capability()}, {vendor}"


def pinned() -> dict:
    """Every platform's digests: ``{"platforms": {platform: {section: {name: {version, digest}}}}}``."""
    return json.loads(PINNED.read_text()) if PINNED.is_file() else {}


def check(section: str, name: str, version: int, digest: str, what: str, where: str = "") -> None:
    """Compare with the digest pinned on this platform (or re-pin it); one-line failure naming the version to
    bump; a skip naming the pinned platforms where this one has none."""
    here = numerics_platform()
    if REPIN:
        with FileLock(f"{PINNED}.lock"):
            table = pinned()
            table.setdefault("platforms", {}).setdefault(here, {}).setdefault(section, {})[name] = {
                "version": version, "digest": digest}
            PINNED.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
        return
    platforms = pinned().get("platforms", {})
    if here not in platforms:
        pytest.skip(f"digests pinned on {sorted(platforms)}, this is {here}: re-pin with UNLEARNBENCH_REPIN=1 to "
                    "check here")
    entry = platforms[here].get(section, {}).get(name)
    if entry is None:
        pytest.fail(f"no pinned digest for {section} `{name}`: run UNLEARNBENCH_REPIN=1 pytest {__file__}",
                    pytrace=False)
    if entry["version"] != version:
        pytest.fail(f"{what} is {version} but `{name}` was pinned at version {entry['version']}: re-pin with "
                    "UNLEARNBENCH_REPIN=1", pytrace=False)
    if entry["digest"] != digest:
        pytest.fail(f"numbers of `{name}` changed: bump `{what}`{where} and re-pin (UNLEARNBENCH_REPIN=1), or "
                    "revert", pytrace=False)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """The tiny profile (3 unlearning steps at batch 16), its data and a fixed randomly initialised original."""
    from unlearnbench.foundation.config import load_profile

    cache = tmp_path_factory.mktemp("pinned-cache")
    profile = load_profile("smoke", [f"runtime.cache_dir={cache}", "runtime.progress=false", "runtime.logger=none",
                                     "pretrain.steps=6", "pretrain.warmup_steps=2", "unlearning.steps=3",
                                     "unlearning.batch_size=16", "classifier.min_accuracy=0.0"])
    data = UnlearningDataModule(profile.data, batch_size=16, seed=profile.seed)
    torch.manual_seed(0)
    original = ConditionalDiffusion.create(profile.unet, profile.data.image_size, data.channels, data.num_classes)
    return profile, data, original.eval()


@pytest.mark.parametrize("name", sorted(BUILTIN_METHODS))
def test_method_numbers_are_pinned(name, setting):
    profile, data, original = setting
    cls = get_method(name)
    method = create_method(name, original, FORGET, data, copy.deepcopy(profile), seed=0)
    model = run_unlearning(method).model
    check("methods", name, cls.version, tensors_hash(model.state_dict().items()), f"{cls.__name__}.version",
          f" (its @register_method in {cls.__module__})")


def _scores_digest(scores: dict) -> str:
    kept = {k: v for k, v in scores.items() if not k.endswith("_seconds")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_evaluator_numbers_are_pinned(setting, tmp_path):
    from unlearnbench.foundation.config import EvaluationConfig
    from unlearnbench.foundation.yardstick import load_yardstick
    from unlearnbench.metrics import PROTOCOL_VERSION
    from unlearnbench.metrics.evaluator import Evaluator, SampleSet

    profile, data, original = setting
    cfg = EvaluationConfig(forget_samples=8, retain_samples_per_class=3, batch_size=64, kid_subsets=5,
                           relearn_steps=2, relearn_readings=[1], relearn_images=8, relearn_samples=4,
                           inversion_steps=2, no_forget_steps=2, no_forget_images_per_class=2, null_samples=4)
    evaluator = Evaluator(load_yardstick(profile), data, profile.sampler, cfg, profile.runtime.cache_dir,
                          progress=False)
    generated = evaluator.generate(original, evaluator.counts(FORGET), seed=1)
    # fixed images: real test digits of every class, with blank and noise images in the forget class's place
    x, y = data.split("test")
    counts = evaluator.counts(FORGET)
    images, labels = [], []
    for c, n in counts.items():
        real = x[y == c][:n]
        if c == FORGET:
            real = torch.cat([torch.full_like(real[: n // 2], -1.0),
                              torch.rand(n - n // 2, *real.shape[1:], generator=torch.Generator().manual_seed(0))
                              * 2 - 1])
        images.append(real)
        labels.append(torch.full((n,), c))
    fixed = SampleSet(torch.cat(images), torch.cat(labels), counts)
    scores = evaluator.score(fixed, FORGET, seed=1).as_dict()
    attack = evaluator.attacks(original, FORGET, profile.runtime, seed=1, run_seed=0, label_dropout=0.1)
    digest = hashlib.sha256("".join([tensors_hash([("samples", generated.images)]), _scores_digest(scores),
                                     _scores_digest(attack)]).encode()).hexdigest()[:16]
    check("evaluator", "evaluator", PROTOCOL_VERSION, digest, "unlearnbench.metrics.PROTOCOL_VERSION")


def test_pretraining_numbers_are_pinned(setting):
    from unlearnbench.foundation.pretraining import RECIPE_VERSION, train_diffusion

    profile, _, _ = setting
    model, _ = train_diffusion(profile)
    check("pretraining", "pretraining", RECIPE_VERSION, tensors_hash(model.state_dict().items()),
          "unlearnbench.foundation.pretraining.RECIPE_VERSION")


def test_a_moved_digest_fails_in_one_line_naming_the_version(monkeypatch, tmp_path):
    table = {"platforms": {numerics_platform(): {"methods": {"salun": {"version": 1, "digest": "0" * 16}}}}}
    path = tmp_path / "pinned.json"
    path.write_text(json.dumps(table))
    monkeypatch.setattr(f"{__name__}.PINNED", path)
    monkeypatch.setattr(f"{__name__}.REPIN", False)
    with pytest.raises(pytest.fail.Exception, match=r"numbers of `salun` changed: bump `SalUn.version`"):
        check("methods", "salun", 1, "1" * 16, "SalUn.version")
    with pytest.raises(pytest.fail.Exception, match="pinned at version 1"):
        check("methods", "salun", 2, "1" * 16, "SalUn.version")
    check("methods", "salun", 1, "0" * 16, "SalUn.version")  # equal: passes
    monkeypatch.setattr(f"{__name__}.numerics_platform", lambda: "torch 0, CPU kernels NONE, nobody")
    with pytest.raises(pytest.skip.Exception, match="this is torch 0, CPU kernels NONE"):  # another platform: skip
        check("methods", "salun", 1, "1" * 16, "SalUn.version")
