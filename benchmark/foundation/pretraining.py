"""Training the original model (and Retrain, which reuses the recipe on retained classes only), with caching.

Recipe (METHODS.md): standard ε-prediction loss, labels dropped to the null class with p = 0.1, Adam(W) with
linear warm-up, gradient-norm clip, EMA of the weights (Lightning's ``WeightAveraging`` with a warmed-up decay);
the EMA weights are what is saved and used.

Long trainings survive interruption: every ``pretrain.checkpoint_every_n_steps`` steps a Lightning checkpoint
(``last.ckpt``: weights, EMA weights and their ``n_averaged``, optimiser, scheduler, loop progress, the torch RNG
state and the seconds trained so far) is written into ``<cache entry>.checkpoints/``, and a training of the same
entry that finds one resumes from it. Resuming on the same hardware and threads is exact on CPU: the data order
depends only on (seed, step) (:class:`unlearnbench.datasets.datamodule.StepBatchSampler`) and the RNG that draws noise,
timesteps, label dropout and UNet dropout is restored, so the resumed model equals the uninterrupted one bit for bit
(``tests/test_resume.py``). On CUDA, non-deterministic kernels make either run differ anyway.

**Committed originals.** A profile may name a committed original (``pretrain.committed``, a folder of
:data:`ORIGINALS_ROOT` written by :meth:`ConditionalDiffusion.save` with the training's metadata). It is loaded
instead of trained when the recipe it records equals the profile's (:func:`committed_original`), and is then
identified by its content (:func:`original_identity`), so runs on any machine start from the same weights and a
fresh clone skips the pretraining. ``tests/test_pinned_numbers.py`` pins that the recipe reproduces the weights.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, WeightAveraging

from unlearnbench.datasets import UnlearningDataModule
from unlearnbench.foundation.cache import artefact_dir, atomic_directory, config_hash, load_or_build, to_jsonable
from unlearnbench.foundation.config import NOT_RECIPE, ConfigError, PretrainConfig, Profile
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.foundation.provenance import (
    PACKAGE_ROOT,
    code_fingerprint,
    directory_fingerprint,
    environment,
    hardware,
    library_versions,
    tensors_hash,
)
from unlearnbench.foundation.trainer import (
    StepLines,
    build_trainer,
    data_parallel,
    is_global_zero,
    per_device_batch,
    pick_device,
    serial_stage,
    serial_threads,
)


class ema_with_warmup:  # noqa: N801 - used like the function it was: ``avg_fn=ema_with_warmup(decay)``
    """EMA update with the usual warm-up of the decay, min(decay, (1 + n) / (10 + n)) after n updates.

    Without the warm-up a fixed decay keeps decay^steps of the random initial weights (8 % after 2,500 steps at
    0.999), which we measured to ruin DDIM samples of the small profiles. A class, not a closure, so that it
    pickles into ``ddp_spawn`` workers.
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay

    def __call__(self, averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
        d = min(self.decay, (1.0 + float(num_averaged)) / (10.0 + float(num_averaged)))
        return d * averaged + (1.0 - d) * current


# The version of the recipe's numbers (data order, loss, optimiser, EMA, what is saved): part of the cache key of
# every original and Retrain model. Bump it when tests/test_pinned_numbers.py says pretraining's numbers changed.
RECIPE_VERSION = 1
CHECKPOINT_FILE = "last.ckpt"  # ModelCheckpoint's ``save_last`` name


class DiffusionTraining(L.LightningModule):
    """Trains a ``ConditionalDiffusion`` with the shared pretraining recipe.

    Its checkpoints carry what Lightning does not save itself: the CPU (and CUDA) RNG state, restored when the
    checkpoint is loaded so the noise, timesteps and label dropout continue as if never interrupted, and the seconds
    trained before (``train_seconds`` sums every attempt; :func:`train_diffusion` sets ``seconds_before`` and
    ``resumed_from_step``, the global step a resumed fit starts at, from the checkpoint before the fit).
    """

    def __init__(self, model: ConditionalDiffusion, recipe: PretrainConfig, data: UnlearningDataModule) -> None:
        super().__init__()
        self.model = model
        self.recipe = recipe
        self.data = data
        self.seconds_before = 0.0  # trained by earlier attempts (from the checkpoint)
        self.resumed_from_step: int | None = None
        self._attempt_start = time.perf_counter()

    def train_seconds(self) -> float:
        """Seconds trained by every attempt so far, this one included."""
        return self.seconds_before + time.perf_counter() - self._attempt_start

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        checkpoint["unlearnbench"] = {"rng": rng, "train_seconds": self.train_seconds()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the RNG (nothing draws from it between here and the first resumed step: the data loader has its
        own generator)."""
        rng = checkpoint["unlearnbench"]["rng"]
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def on_train_start(self) -> None:
        self._attempt_start = time.perf_counter()

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        """Batches from the trainer's global step on (restored before this is called when resuming)."""
        t = self.trainer
        return self.data.pretraining_dataloader(t.global_step, t.global_rank, t.world_size)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x0, labels = batch
        loss = self.model.denoising_loss(x0, self.model.drop_labels(labels, self.recipe.label_dropout))
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        r = self.recipe
        opt_cls = torch.optim.AdamW if r.optimizer == "adamw" else torch.optim.Adam
        opt = opt_cls(self.model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
        warmup = max(1, r.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def checkpoint_dir_of(entry: Path) -> Path:
    """Where the training of cache entry ``entry`` keeps its resumable checkpoint: ``<entry>.checkpoints/``, a
    sibling, because the entry itself is created atomically only when the model is complete."""
    return entry.with_name(f"{entry.name}.checkpoints")


def train_diffusion(profile: Profile, classes: Sequence[int] | None = None, seed: int | None = None,
                    logger=False, checkpoint_dir: Path | None = None,
                    callbacks: Sequence[Callback] = (), what: str = "the model") -> tuple[ConditionalDiffusion, dict]:
    """Train from scratch on ``classes`` (all by default) with the profile's recipe; returns (EMA model, metadata).

    With ``checkpoint_dir`` (and ``pretrain.checkpoint_every_n_steps`` > 0) a checkpoint is written there
    periodically and, when one exists already, the fit resumes from it (metadata: ``resumed_from_step``;
    ``train_seconds`` sums every attempt). ``callbacks`` are added to the Trainer's (tests use them to interrupt a
    fit). Under data parallelism (``runtime.devices`` > 1) the global batch stays ``pretrain.batch_size``. Without a
    progress bar (``runtime.progress=false``) the fit prints :class:`StepLines` naming ``what`` it trains.
    """
    seed = profile.seed if seed is None else seed
    L.seed_everything(seed, workers=True, verbose=False)
    recipe = profile.pretrain
    per_device_batch(recipe.batch_size, profile.runtime.devices, "pretrain.batch_size")
    data = UnlearningDataModule(profile.data, batch_size=recipe.batch_size, classes=classes, seed=seed)
    model = ConditionalDiffusion.create(profile.unet, profile.data.image_size, data.channels, data.num_classes)
    module = DiffusionTraining(model, recipe, data)
    all_callbacks: list[Callback] = [WeightAveraging(avg_fn=ema_with_warmup(recipe.ema_decay)), *callbacks,
                                     *([] if profile.runtime.progress else [StepLines(what)])]
    resume_from = None
    if checkpoint_dir is not None and recipe.checkpoint_every_n_steps > 0:
        all_callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, save_last=True, save_top_k=0,
                                             every_n_train_steps=recipe.checkpoint_every_n_steps))
        if (checkpoint_dir / CHECKPOINT_FILE).is_file():
            resume_from = str(checkpoint_dir / CHECKPOINT_FILE)
    trainer = build_trainer(profile.runtime, max_steps=recipe.steps, grad_clip=recipe.grad_clip,
                            callbacks=all_callbacks, logger=logger, use_distributed_sampler=False)
    finished = False
    if resume_from is not None:  # read here, not in a hook: under ddp_spawn hooks run in other processes
        state = torch.load(resume_from, map_location="cpu", weights_only=False)
        module.seconds_before = float(state["unlearnbench"]["train_seconds"])
        module.resumed_from_step = int(state["global_step"])
        finished = module.resumed_from_step >= recipe.steps
        if finished:  # saved at the last step: Lightning would skip the fit and never copy the EMA weights in
            module.load_state_dict(state["state_dict"])  # WeightAveraging saves the averaged weights there
        del state
    start = time.perf_counter()
    if not finished:
        trainer.fit(module, ckpt_path=resume_from)
    seconds = module.seconds_before + time.perf_counter() - start
    model = module.model.cpu().eval()
    meta = {
        "classes": data.classes_except() if classes is None else sorted(classes),
        "class_names": data.class_names,
        "seed": seed,
        "steps": recipe.steps,
        "train_seconds": round(seconds, 2),
        "resumed_from_step": module.resumed_from_step,
        "world_size": trainer.world_size,
        "per_device_batch_size": per_device_batch(recipe.batch_size, trainer.world_size, "pretrain.batch_size"),
        "final_loss": float(trainer.callback_metrics.get("train/loss", float("nan"))),
        "data": profile.data,
        "unet": profile.unet,
        "pretrain": recipe,
        "versions": library_versions(),
        "hardware": hardware(pick_device(profile.runtime)),
        "recipe_version": RECIPE_VERSION,
        "data_fingerprint": data_fingerprint(profile),
        "code_fingerprint": code_fingerprint(),  # provenance: recorded, never keyed
        "weights": tensors_hash(model.state_dict().items()),
    }
    return model, meta


_DATA_FINGERPRINTS: dict[str, str] = {}


def data_fingerprint(profile: Profile) -> str:
    """Hash of the training split's content (images and labels as loaded at the profile's size); cached per data
    configuration in this process."""
    memo = config_hash(profile.data)
    if memo not in _DATA_FINGERPRINTS:
        x, y = UnlearningDataModule(profile.data).split("train")
        _DATA_FINGERPRINTS[memo] = tensors_hash([("images", x), ("labels", y)])
    return _DATA_FINGERPRINTS[memo]


def diffusion_cache_key(profile: Profile, classes: Sequence[int] | None, seed: int) -> str:
    """What makes the model, and nothing else: ``RECIPE_VERSION``, the data configuration and content, UNet,
    recipe, classes, seed and the environment (device, threads, precision, library versions, the device count when
    > 1). Not the code that loads, locks or configures (a refactor retrains nothing), nor
    ``pretrain.checkpoint_every_n_steps`` (it does not change the model). The original (``classes`` None) is
    trained alone, on :func:`serial_threads` threads also when runs go on beside each other (``runtime.workers``),
    and keyed with that count."""
    threads = serial_threads(profile.runtime) if classes is None else None
    env = environment(pick_device(profile.runtime), profile.runtime.precision, threads)
    parallel = data_parallel(profile.runtime)  # empty on one device: single-device keys are unchanged
    return config_hash(RECIPE_VERSION, profile.data, data_fingerprint(profile), profile.unet,
                       profile.pretrain.recipe(), None if classes is None else sorted(classes), seed, env,
                       *([parallel] if parallel else []))


def diffusion_dir(profile: Profile, classes: Sequence[int] | None = None, seed: int | None = None,
                  kind: str = "original") -> Path:
    """The cache entry ``<cache_dir>/<kind>/<key>`` of the model trained on ``classes`` (see
    :func:`diffusion_cache_key`)."""
    seed = profile.seed if seed is None else seed
    return artefact_dir(profile.runtime.cache_dir, kind, diffusion_cache_key(profile, classes, seed))


def train_or_load_diffusion(profile: Profile, classes: Sequence[int] | None = None, seed: int | None = None,
                            kind: str = "original", logger=False) -> tuple[ConditionalDiffusion, dict, Path]:
    """The cached model trained on ``classes`` with the profile's recipe; trains and saves it on a miss.

    Returns (model on CPU, metadata with ``cache_hit``, directory). The key (:func:`diffusion_cache_key`) hashes
    the recipe's version, data, UNet, recipe, classes, seed and environment, so any change of those retrains while
    an identical rerun loads in seconds. Workers sharing the cache train it once: the others wait for it and load
    it (:func:`unlearnbench.foundation.cache.load_or_build`).
    """
    seed = profile.seed if seed is None else seed
    directory = diffusion_dir(profile, classes, seed, kind)

    def load() -> tuple[ConditionalDiffusion, dict, Path] | None:
        if not (directory / "metadata.json").is_file():
            return None
        model = ConditionalDiffusion.load(directory, image_size=profile.data.image_size)
        meta = json.loads((directory / "metadata.json").read_text())
        return model, {**meta, "cache_hit": True}, directory

    def build() -> tuple[ConditionalDiffusion, dict, Path]:
        checkpoints = checkpoint_dir_of(directory)
        with serial_stage(profile.runtime) if classes is None else nullcontext():
            what = f"the {kind}" + ("" if classes is None else f" (classes {', '.join(map(str, classes))})")
            model, meta = train_diffusion(profile, classes, seed, logger=logger, checkpoint_dir=checkpoints,
                                          what=what)
        if is_global_zero():
            with atomic_directory(directory) as tmp:
                model.save(tmp, to_jsonable(meta))
            shutil.rmtree(checkpoints, ignore_errors=True)  # the model is safe in the cache now
        return model, {**to_jsonable(meta), "num_classes": model.num_classes, "cache_hit": False}, directory

    return load_or_build(directory, load, build)


ORIGINALS_ROOT = PACKAGE_ROOT / "originals"  # committed original models (``pretrain.committed``)


def committed_recipe(profile: Profile) -> dict[str, Any]:
    """What a committed original must have been trained with to stand for the profile's: the fields of its
    ``metadata.json`` that make the weights (never the hardware, library versions or code that trained it)."""
    return to_jsonable({"recipe_version": RECIPE_VERSION, "data": profile.data, "data_fingerprint":
                        data_fingerprint(profile), "unet": profile.unet, "pretrain": profile.pretrain.recipe(),
                        "seed": profile.seed})


def committed_original(profile: Profile) -> Path | None:
    """The committed original named by ``pretrain.committed`` when its recorded recipe equals the profile's
    (:func:`committed_recipe`), else ``None`` (the original is trained). A name with no such folder is a
    ConfigError naming the folders there are."""
    name = profile.pretrain.committed
    if not name:
        return None
    directory = ORIGINALS_ROOT / name
    if not (directory / "metadata.json").is_file():
        there = sorted(p.name for p in ORIGINALS_ROOT.glob("*") if (p / "metadata.json").is_file())
        raise ConfigError(f"pretrain.committed={name}: no committed original {directory} (committed: "
                          f"{', '.join(there) or 'none'}); name one of them, or set pretrain.committed=null to train")
    meta = json.loads((directory / "metadata.json").read_text())
    meta["pretrain"] = {k: v for k, v in meta.get("pretrain", {}).items() if k not in NOT_RECIPE}
    wanted = committed_recipe(profile)
    return directory if all(meta.get(k) == v for k, v in wanted.items()) else None


def commit_original(profile: Profile, name: str, logger=False) -> tuple[Path, dict]:
    """Train (or load from the cache) the original of the profile's recipe and copy it to
    ``ORIGINALS_ROOT/<name>``, from where ``pretrain.committed=<name>`` loads it instead of training it: a fresh
    clone, or a later session of a study whose cache did not survive, starts from the same weights. Returns the
    folder and the training's metadata. A folder of that name holding the same weights is kept; one holding other
    weights is refused (ConfigError: choose another name), and so is an existing folder that is not a committed
    original (no ``metadata.json``), before any training: its files would enter the original's content hash."""
    if not name or Path(name).name != name:
        raise ConfigError(f"--commit {name!r}: give a plain folder name (it is created in {ORIGINALS_ROOT})")
    target = ORIGINALS_ROOT / name
    if target.exists() and not (target / "metadata.json").is_file():
        raise ConfigError(f"--commit {name}: {target} exists but holds no committed original (no metadata.json); "
                          f"move its files out of the way, or choose another name")
    _, meta, directory = train_or_load_diffusion(profile, logger=logger)
    if (target / "metadata.json").is_file():
        there = json.loads((target / "metadata.json").read_text()).get("weights")
        if there != meta["weights"]:
            raise ConfigError(f"{target} holds another original (weights {there}, this recipe's are "
                              f"{meta['weights']}); choose another name, or remove that folder")
        return target, meta
    with atomic_directory(target) as tmp:
        shutil.copytree(directory, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.lock"))
    return target, meta


def original_source(profile: Profile, pretrained: str | None = None) -> str | None:
    """Where the original is loaded from: the user's own directory, else the matching committed original
    (:func:`committed_original`), else ``None``: trained and cached from the recipe."""
    if pretrained:
        return pretrained
    committed = committed_original(profile)
    return None if committed is None else str(committed)


def original_identity(profile: Profile, pretrained: str | None = None) -> dict[str, str]:
    """What identifies the original model in run keys without loading it: the content hash of the directory it
    is loaded from (the user's own or a committed one, :func:`original_source`), else the cache key of the trained
    one (:func:`diffusion_cache_key`: what makes its weights; tests/test_pinned_numbers.py pins that the recipe
    reproduces them)."""
    pretrained = original_source(profile, pretrained)
    if pretrained:
        return {"pretrained": directory_fingerprint(pretrained)}
    return {"original": diffusion_cache_key(profile, None, profile.seed)}


def load_original(profile: Profile, pretrained: str | None = None, logger=False) -> tuple[ConditionalDiffusion, dict]:
    """The original model: the user's own checkpoint directory when given, else the matching committed one, else
    the cached/trained one (:func:`original_source`)."""
    pretrained = original_source(profile, pretrained)
    if pretrained:
        data = UnlearningDataModule(profile.data)
        model = ConditionalDiffusion.load(pretrained, num_classes=data.num_classes,
                                          image_size=profile.data.image_size, channels=data.channels)
        return model, {"source": str(pretrained), "cache_hit": True,
                       "weights": tensors_hash(model.state_dict().items())}
    model, meta, _ = train_or_load_diffusion(profile, logger=logger)
    return model, meta
