r"""The yardstick: the fixed, committed evaluation networks of a dataset (like Inception's weights for FID).

A yardstick folder (``benchmark/yardsticks/<source>-<image_size>px/``) holds two timm networks and a card:

- ``classifier.safetensors``: K classes, trained on clean images. It gives the scores comparable with the papers
  (UA, entropy, retained accuracy) and, through its penultimate features, the FID/KID space.
- ``reader.safetensors``: the *reader* (v2, issue 19), K + 1 outputs, the last one meaning "unrecognisable": "a
  digit a person can read → its class; no digit → unrecognisable". Half of each batch is labelled digits — a third
  as a sampler that stops denoising leaves them,

  .. math:: \tilde x = \mathrm{clip}(a\,x + \sigma\,\varepsilon,\,-1,\,1),\quad a \sim U[0.7, 1],\;
            \sigma \sim U[0, 1]\ (\sigma = 0 \text{ for a third}),

  two thirds under random combinations of the renderings of :mod:`unlearnbench.foundation.renderings` (faint ink on
  any paper, either polarity, stroke width, shift, scale, rotation, blur, frames, moderate noise) — and half images
  that carry no digit (label K; :func:`~unlearnbench.foundation.renderings.junk`: noise of every kind, flat,
  speckle, pixel-shuffled digits, a frame alone, a buried digit).
- ``card.json``: the recipe, the command, the hardware, every measured accuracy (clean, noisy at
  :data:`NOISE_LEVELS`, unrecognisable rates of pure noise), the stress card (:func:`stress_card`), the floors,
  each file's sha256 and a probe (the predictions on fixed images) that pins the networks' behaviour across
  machines.

Runs only *load* a yardstick (:func:`load_yardstick`); a missing one stops with the command that makes it, so it is
never retrained by accident. Its fingerprint (sha256 of both weight files) is in every record and key.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.datasets.config import DataConfig
from unlearnbench.foundation.cache import atomic_directory, to_jsonable
from unlearnbench.foundation.classifier import ClassifierTooWeakError, EvalClassifier, train_network
from unlearnbench.foundation.config import ClassifierConfig, ConfigError, Profile
from unlearnbench.foundation.provenance import PACKAGE_ROOT, file_hash, hardware, library_versions
from unlearnbench.foundation.renderings import (
    READABLE,
    UNREADABLE,
    junk,
    random_renderings,
    readable_images,
    unreadable_images,
)
from unlearnbench.foundation.trainer import pick_device

YARDSTICK_ROOT = PACKAGE_ROOT / "yardsticks"
FILES = ("classifier.safetensors", "reader.safetensors")
NOISE_LEVELS = (0.25, 0.5, 0.75, 1.0)  # σ of the held-out noisy-accuracy report (images in [-1, 1])
FLOOR_SIGMA = 0.5  # the σ whose reader accuracy must reach classifier.min_noisy_accuracy
MEASURE_SEED = 4321
PROBE_IMAGES = 64
STRESS_IMAGES = 2000  # test digits per family of the stress card


class YardstickMissingError(ConfigError):
    """No (or an unusable) committed yardstick for the profile's data."""


def default_directory(data: DataConfig) -> Path:
    """The committed yardstick folder of a dataset at an image size."""
    return YARDSTICK_ROOT / f"{data.source}-{data.image_size}px"


def yardstick_directory(profile: Profile) -> Path:
    """``classifier.directory`` if set, else the committed folder of the profile's data."""
    configured = profile.classifier.directory
    return Path(configured).expanduser() if configured else default_directory(profile.data)


# -- the reader's training distribution ------------------------------------------------------------------------
def reader_batch(num_classes: int):
    """The reader's batch transform (see the module docstring): half labelled digits — a third as a sampler that
    stops denoising leaves them, two thirds under random renderings — and half images without a digit (label K)."""

    def transform(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        b = (-1,) + (1,) * (x.ndim - 1)
        sigma = torch.empty(n).uniform_(0.0, 1.0) * (torch.rand(n) > 1 / 3)
        contrast = torch.empty(n).uniform_(0.7, 1.0)
        noisy = (contrast.view(b) * x + sigma.view(b).to(x) * torch.randn_like(x)).clamp(-1, 1)
        rendered = torch.where((torch.rand(n) < 2 / 3).view(b), random_renderings(x), noisy)
        is_junk = torch.rand(n) < 0.5
        images = torch.where(is_junk.view(b), junk(x), rendered)
        labels = torch.where(is_junk, torch.full_like(y, num_classes), y)
        return images, labels

    return transform


# -- measurement ----------------------------------------------------------------------------------------------
def noisy(images: torch.Tensor, sigma: float, seed: int = MEASURE_SEED) -> torch.Tensor:
    """``clip(x + σ ε, −1, 1)`` with a fixed generator (the held-out noisy test images of the card)."""
    g = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=g)).clamp(-1, 1)


def noise_probes(shape: tuple[int, ...], n: int, seed: int = MEASURE_SEED) -> dict[str, torch.Tensor]:
    """Pure-noise test images: N(0, 1) clipped, saturated (sign of N(0, 1)), and U[−1, 1]."""
    g = torch.Generator().manual_seed(seed + 1)
    gauss = torch.randn((n, *shape), generator=g)
    return {"gaussian": gauss.clamp(-1, 1), "saturated": gauss.sign(),
            "uniform": torch.rand((n, *shape), generator=g) * 2 - 1}


def measure(classifier: EvalClassifier, reader: EvalClassifier, data: UnlearningDataModule) -> dict:
    """Every figure of the card, on the held-out test split (pure function of the networks and the data)."""
    x, y = data.split("test")
    k = data.num_classes
    out: dict = {"test_images": len(y)}
    cls_pred = classifier.predict_logits(x).argmax(1)
    read_pred = reader.predict_logits(x).argmax(1)
    out["classifier_accuracy"] = float((cls_pred == y).float().mean())
    out["classifier_accuracy_per_class"] = [float((cls_pred[y == c] == c).float().mean()) for c in range(k)]
    out["reader_accuracy"] = float((read_pred == y).float().mean())
    out["reader_accuracy_per_class"] = [float((read_pred[y == c] == c).float().mean()) for c in range(k)]
    for sigma in NOISE_LEVELS:
        xn = noisy(x, sigma)
        out[f"classifier_accuracy_sigma{sigma:g}"] = float((classifier.predict_logits(xn).argmax(1) == y)
                                                           .float().mean())
        pred = reader.predict_logits(xn).argmax(1)
        out[f"reader_accuracy_sigma{sigma:g}"] = float((pred == y).float().mean())
        out[f"reader_unrecognisable_sigma{sigma:g}"] = float((pred == k).float().mean())
    for name, images in noise_probes(tuple(x.shape[1:]), 1000).items():
        pred = reader.predict_logits(images).argmax(1)
        out[f"reader_unrecognisable_{name}_noise"] = float((pred == k).float().mean())
    out["stress"] = stress_card(reader, x[:STRESS_IMAGES], y[:STRESS_IMAGES], k)
    return out


def stress_card(reader: EvalClassifier, x: torch.Tensor, y: torch.Tensor, k: int) -> dict:
    """The reader's stress card: for every readable family of :mod:`~unlearnbench.foundation.renderings` at its
    stated strength, the share of the test digits ``x`` read as their class (``right``) and as unrecognisable; for
    every unreadable family, the share read as unrecognisable. Fixed seeds: a pure function of the reader."""
    card: dict = {"images": len(y), "readable": {}, "unreadable": {}}
    for i, (name, (_, what)) in enumerate(READABLE.items()):
        pred = reader.predict_logits(readable_images(name, x, MEASURE_SEED + i)).argmax(1)
        card["readable"][name] = {"what": what, "right": float((pred == y).float().mean()),
                                  "unrecognisable": float((pred == k).float().mean())}
    for i, (name, what) in enumerate(UNREADABLE.items()):
        pred = reader.predict_logits(unreadable_images(name, x, MEASURE_SEED + i)).argmax(1)
        card["unreadable"][name] = {"what": what, "unrecognisable": float((pred == k).float().mean())}
    return card


def probe_images(data: UnlearningDataModule) -> torch.Tensor:
    """Fixed images whose predictions the card records: the first test images and some pure noise."""
    x, _ = data.split("test")
    noise = noise_probes(tuple(x.shape[1:]), PROBE_IMAGES // 4)
    return torch.cat([x[:PROBE_IMAGES], noise["gaussian"], noise["saturated"]])


def probe(yardstick: Yardstick, data: UnlearningDataModule) -> dict[str, list[int]]:
    images = probe_images(data)
    return {"classifier": yardstick.classifier.predict_logits(images).argmax(1).tolist(),
            "reader": yardstick.reader.predict_logits(images).argmax(1).tolist()}


def floor_failures(metrics: dict, config: ClassifierConfig) -> list[str]:
    """Every figure of a card below the profile's floors, as "figure = value, below the floor f (setting)"; the
    stress families in ``config.stress_exempt`` are held to none. Raises ConfigError for an exemption that names
    no family."""
    checks = [
        ("classifier_accuracy", config.min_accuracy, "classifier.min_accuracy"),
        ("reader_accuracy", config.min_accuracy, "classifier.min_accuracy"),
        (f"reader_accuracy_sigma{FLOOR_SIGMA:g}", config.min_noisy_accuracy, "classifier.min_noisy_accuracy"),
        ("reader_unrecognisable_gaussian_noise", config.min_unrecognisable, "classifier.min_unrecognisable"),
    ]
    unknown = sorted(set(config.stress_exempt) - set(READABLE) - set(UNREADABLE))
    if unknown:
        raise ConfigError(f"classifier.stress_exempt names {unknown}, which are not stress-card families; the "
                          f"families are {sorted(READABLE) + sorted(UNREADABLE)}")
    stress = metrics.get("stress", {})
    exempt = set(config.stress_exempt)
    checks += [(f"stress: {name} read right", config.min_readable, "classifier.min_readable", row["right"])
               for name, row in stress.get("readable", {}).items() if name not in exempt]
    checks += [(f"stress: {name} unrecognisable", config.min_unreadable, "classifier.min_unreadable",
                row["unrecognisable"]) for name, row in stress.get("unreadable", {}).items() if name not in exempt]
    if not stress and (config.min_readable > 0 or config.min_unreadable > 0):
        checks.append(("stress card", 1.0, "classifier.min_readable / min_unreadable", float("nan")))
    failures = []
    for key, floor, setting, *given in checks:
        value = given[0] if given else metrics.get(key, float("nan"))
        if not value >= floor:
            failures.append(f"{key} = {value:.2%}, below the floor {floor:.2%} ({setting})")
    return failures


def check_floors(metrics: dict, config: ClassifierConfig, where: Path) -> None:
    """Refuse a yardstick below the profile's floors, naming every figure below its floor and the fix."""
    failures = floor_failures(metrics, config)
    if failures:
        raise ClassifierTooWeakError(floor_message(where, failures))


def floor_message(where: Path, failures: list[str]) -> str:
    return (f"the yardstick in {where} scores {'; '.join(failures)}: scores read with it would not be trustworthy. "
            "Train a stronger one with `unlearnbench yardstick` (more classifier.epochs / reader_epochs, another "
            "classifier.architecture), or lower the floor knowingly (or exempt a stress family that does not keep "
            "the class of this data: classifier.stress_exempt).")


# -- the yardstick ------------------------------------------------------------------------------------------------
@dataclass
class Yardstick:
    """The loaded networks, their card and fingerprint (sha256 of both weight files, 16 hex digits)."""

    classifier: EvalClassifier
    reader: EvalClassifier
    card: dict
    fingerprint: str
    directory: Path

    @property
    def name(self) -> str:
        return f"{self.classifier.name}#{self.fingerprint}"

    def to(self, device: torch.device | str) -> Yardstick:
        self.classifier.to(device).eval()
        self.reader.to(device).eval()
        return self


def _network(card: dict, num_outputs: int) -> EvalClassifier:
    recipe = ClassifierConfig(**{k: v for k, v in card["recipe"].items() if k in ClassifierConfig.__dataclass_fields__})
    return EvalClassifier(recipe, num_outputs, card["channels"])


def load_yardstick(profile: Profile, check: bool = True, command: str | None = None) -> Yardstick:
    """The yardstick for the profile's data (see :func:`yardstick_directory`), verified and floor-checked.

    ``command``: the command that trains the missing networks, named in the error (default:
    ``unlearnbench yardstick --profile <profile's name>``; a profile built with overrides passes its own).

    Raises:
        YardstickMissingError: no folder, a missing or modified file, or networks for other data.
        ClassifierTooWeakError: a figure of its card is below the profile's floors.
    """
    directory = yardstick_directory(profile)
    command = command or f"unlearnbench yardstick --profile {profile.name}"
    make = (f"`{command}` trains it once (deterministic; commit the folder "
            "it writes), or set classifier.directory to a yardstick folder of your own")
    card_path = directory / "card.json"
    if not card_path.is_file():
        raise YardstickMissingError(f"no evaluation networks (yardstick) for {profile.data.source} at "
                                    f"{profile.data.image_size}px: {card_path} does not exist. {make}")
    try:
        card = json.loads(card_path.read_text())
    except ValueError as err:
        raise YardstickMissingError(f"{card_path} is not valid JSON ({err}): restore it from git. {make}") from None
    for name in FILES:
        path = directory / name
        if not path.is_file() or file_hash(path, 64) != card["files"].get(name):
            raise YardstickMissingError(f"{path} is missing or differs from the sha256 in {card_path} (a modified "
                                        f"or partial file): restore the folder from git. {make}")
    data = card["data"]
    if (data["source"], data["image_size"]) != (profile.data.source, profile.data.image_size):
        raise YardstickMissingError(f"the yardstick in {directory} was trained for {data['source']} at "
                                    f"{data['image_size']}px, not {profile.data.source} at "
                                    f"{profile.data.image_size}px. {make}")
    from safetensors.torch import load_file

    k = card["num_classes"]
    classifier, reader = _network(card, k), _network(card, k + 1)
    classifier.load_state_dict(load_file(directory / FILES[0]))
    reader.load_state_dict(load_file(directory / FILES[1]))
    if check:
        check_floors(card["metrics"], profile.classifier, directory)
    return Yardstick(classifier.eval(), reader.eval(), card, card["fingerprint"], directory)


def train_yardstick(profile: Profile, directory: str | Path | None = None, overwrite: bool = False,
                    command: str | None = None) -> Yardstick:
    """``unlearnbench yardstick``: train both networks with the profile's recipe, measure, check the floors and
    write the folder atomically (default: the committed folder of the profile's data). Deterministic for a fixed
    ``profile.seed`` on a given machine. An existing folder is only replaced with ``overwrite``. ``command`` is the
    command line recorded in the card (default: ``unlearnbench yardstick --profile <name>``; a profile built with
    ``--set`` overrides passes them, so that the card says how to remake it)."""
    cfg, runtime = profile.classifier, profile.runtime
    directory = Path(directory).expanduser() if directory else default_directory(profile.data)
    if directory.exists() and not overwrite:
        raise ConfigError(f"{directory} already holds a yardstick; every committed score depends on it. Pass --force "
                          "to replace it (then regenerate the reference results), or --output another folder")
    data = UnlearningDataModule(profile.data, batch_size=cfg.batch_size, seed=profile.seed)
    start = time.perf_counter()
    L.seed_everything(profile.seed, verbose=False)
    classifier, cls_steps = train_network(cfg, runtime, data, data.num_classes, cfg.epochs)
    L.seed_everything(profile.seed + 1, verbose=False)
    reader, read_steps = train_network(cfg, runtime, data, data.num_classes + 1, cfg.reader_epochs,
                                       transform=reader_batch(data.num_classes))
    seconds = time.perf_counter() - start
    metrics = measure(classifier, reader, data)
    failures = floor_failures(metrics, cfg)
    final = directory if not failures else rejected_directory(profile, directory)
    from safetensors.torch import save_file

    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.{uuid.uuid4().hex}.new")
    with atomic_directory(staging) as tmp:
        for name, net in zip(FILES, (classifier, reader), strict=True):
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / name))
        files = {name: file_hash(tmp / name, 64) for name in FILES}
        fingerprint = hashlib.sha256("".join(files[n] for n in FILES).encode()).hexdigest()[:16]
        yardstick = Yardstick(classifier, reader, {}, fingerprint, directory)
        card = {
            "fingerprint": fingerprint,
            "files": files,
            "command": command or f"unlearnbench yardstick --profile {profile.name}",
            "data": to_jsonable(profile.data),
            "num_classes": data.num_classes,
            "class_names": list(data.class_names),
            "channels": data.channels,
            "recipe": {k: v for k, v in to_jsonable(cfg).items() if k != "directory"},
            "seed": profile.seed,
            "steps": {"classifier": cls_steps, "reader": read_steps},
            "train_seconds": round(seconds, 1),
            "hardware": hardware(pick_device(runtime)),
            "host": platform.node(),
            "versions": library_versions(),
            "metrics": metrics,
            "floors": {"min_accuracy": cfg.min_accuracy, "min_noisy_accuracy": cfg.min_noisy_accuracy,
                       "noisy_floor_sigma": FLOOR_SIGMA, "min_unrecognisable": cfg.min_unrecognisable,
                       "min_readable": cfg.min_readable, "min_unreadable": cfg.min_unreadable,
                       "stress_exempt": list(cfg.stress_exempt)},
            "probe": probe(yardstick, data),
            **({"rejected": failures} if failures else {}),
        }
        (tmp / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    if final.exists():
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
        os.replace(final, old)
        shutil.rmtree(old)
    os.replace(staging, final)
    if failures:
        raise ClassifierTooWeakError(floor_message(directory, failures) + f" The rejected networks and their whole "
                                     f"card (every figure of the stress card) are kept in {final}.")
    yardstick.card = card
    return yardstick


def rejected_directory(profile: Profile, directory: Path) -> Path:
    """Where a yardstick below its floors is kept for inspection, never loaded by a run: the cache's
    ``yardstick-rejected/<folder name>``."""
    return Path(profile.runtime.cache_dir).expanduser() / "yardstick-rejected" / directory.name
