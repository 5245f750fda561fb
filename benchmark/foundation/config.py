"""Typed configuration of a benchmark profile, loaded from YAML with jsonargparse.

A profile (``benchmark/profiles/<name>.yaml``) fixes everything that makes runs comparable: data, the original
model's recipe, the sampler, the evaluation classifier, the evaluation protocol, the unlearning budget and the
runtime (device, precision). Unknown keys or badly typed values stop loading with a message naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from unlearnbench.datasets.config import DataConfig

PROFILE_DIR = Path(__file__).parents[1] / "profiles"


@dataclass
class UNetConfig:
    """diffusers ``UNet2DModel`` shape. One down/up block per entry of ``block_out_channels``.

    Attributes:
        attention_resolutions: feature-map sizes (in pixels) whose blocks get self-attention (e.g. [16] at 32×32).
    """

    block_out_channels: list[int] = field(default_factory=lambda: [16, 32, 32])
    layers_per_block: int = 1
    attention_resolutions: list[int] = field(default_factory=list)
    dropout: float = 0.0
    norm_num_groups: int = 8


NOT_RECIPE = ("checkpoint_every_n_steps", "committed")  # PretrainConfig fields that do not change the trained model


@dataclass
class PretrainConfig:
    """Recipe of the original model, reused unchanged by Retrain (METHODS.md, "Shared model recipe").

    Attributes:
        checkpoint_every_n_steps: write a resumable Lightning checkpoint (weights, EMA, optimiser, RNG, elapsed
            time) every this many steps into ``<cache entry>.checkpoints/``; an interrupted training resumes from it
            and the folder is removed once the model is cached (0 = off). Not part of the recipe: it does not change
            the trained model, so it is left out of every key (:meth:`recipe`).
        committed: the name of a committed original model (``benchmark/originals/<name>/``) to load instead of
            training one, used only when the recipe it records (data configuration and content, UNet, this
            recipe, seed, recipe version) equals the profile's; otherwise the original is trained (and cached) as
            usual. Such a model is keyed by its content, like a user's own (``--pretrained``), so every machine
            starts from the same weights. Not part of the recipe (:meth:`recipe`).
    """

    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    optimizer: Literal["adam", "adamw"] = "adamw"
    weight_decay: float = 0.0
    warmup_steps: int = 200
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    label_dropout: float = 0.1
    checkpoint_every_n_steps: int = 500
    committed: str | None = None

    def __post_init__(self) -> None:
        if self.checkpoint_every_n_steps < 0:
            raise ValueError(f"pretrain.checkpoint_every_n_steps must be >= 0 (0 = off), got "
                             f"{self.checkpoint_every_n_steps}")

    def recipe(self) -> dict[str, Any]:
        """The fields that define the trained model (all but ``checkpoint_every_n_steps`` and ``committed``): what
        keys hash."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_RECIPE}


@dataclass
class SamplerConfig:
    """Sampling protocol (every field is part of the protocol key and of the printed protocol).

    Attributes:
        kind: ``ddim`` = generalized steps (Song et al.; ``eta`` 0 is deterministic DDIM, ``eta`` 1 is the reference
            SA/SalUn sampler) or ``ddpm`` = ancestral DDPM steps (diffusers ``DDPMScheduler``).
        steps: number of denoising steps of either kind (1000 = the full chain).
        guidance: CFG weight w in (1 + w)·ε_θ(x, t, c) − w·ε_θ(x, t, ∅).
        eta: stochasticity of ``ddim`` steps; must stay 0 for ``ddpm`` (its steps are stochastic by definition).
        clip: x0 clipping. ``none`` (default; the reference protocol, which does not clip) or ``consistent``:
            x0 predicted at each step is clipped to [−1, 1] and ε recomputed from it (guided-diffusion's
            ``clip_denoised``; for ``ddpm`` diffusers' ``clip_sample``, which is consistent by construction).
            Consistent clipping hides a uniform shrinkage of ε (measured: ε × 0.97 drops recognition to 80 %
            unclipped, 98.5 % clipped), so it flatters methods whose loss pushes ε towards 0.
    """

    kind: Literal["ddim", "ddpm"] = "ddim"
    steps: int = 50
    guidance: float = 2.0
    eta: float = 0.0
    clip: Literal["none", "consistent"] = "none"

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise ValueError(f"sampler.steps must lie in 1..1000, got {self.steps}")
        if self.kind == "ddpm" and self.eta != 0.0:
            raise ValueError("sampler.eta applies to kind=ddim (generalized steps); DDPM steps are stochastic by "
                             "definition. For the reference sampler use sampler.kind=ddim sampler.eta=1.0")

    def describe(self) -> str:
        eta = f", eta={self.eta:g}" if self.kind == "ddim" else ""
        return f"{self.kind.upper()}-{self.steps}{eta}, CFG w={self.guidance:g}, x0 clip {self.clip}"


@dataclass
class ClassifierConfig:
    """The evaluation networks (the yardstick): where the committed ones are, the recipe that made them, floors.

    Runs never train them: they load the folder ``directory`` (default: the committed
    ``benchmark/yardsticks/<source>-<image_size>px``), whose weights' fingerprint is part of every key. The recipe
    fields (architecture … reader_epochs) are read only by ``unlearnbench yardstick``, the command that trains a
    folder once; the floors are checked both when it is trained and whenever it is loaded.

    Attributes:
        directory: a yardstick folder of your own (made by ``unlearnbench yardstick --output DIR``).
        architecture: any ``timm.create_model`` name; ``model_kwargs`` are passed through.
        input_size: images are resized to this size inside the networks (timm stems downsample by 4).
        epochs: training epochs of the clean classifier; ``reader_epochs`` those of the noise-aware reader.
        min_accuracy: held-out accuracy floor of the classifier and of the reader on clean images.
        min_noisy_accuracy: the reader's floor on held-out images with Gaussian noise of σ = 0.5 added.
        min_unrecognisable: the reader's floor for calling pure Gaussian noise "unrecognisable".
        min_readable: the reader's floor on every readable family of its stress card (share read as the right
            class; :mod:`unlearnbench.foundation.renderings`).
        min_unreadable: the reader's floor on every junk family of its stress card (share read as unrecognisable).
        stress_exempt: stress-card families held to no floor (still measured and shown on the card): renderings
            that do not keep the class of *this* data, e.g. strokes dilated 3×3 close the gap between trouser legs
            at 16 px. Each must name a family of :mod:`unlearnbench.foundation.renderings`.
    """

    directory: str | None = None
    architecture: str = "resnet18"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: int = 32
    epochs: int = 2
    reader_epochs: int = 4
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    min_accuracy: float = 0.97
    min_noisy_accuracy: float = 0.9
    min_unrecognisable: float = 0.9
    min_readable: float = 0.9
    min_unreadable: float = 0.95
    stress_exempt: list[str] = field(default_factory=list)


@dataclass
class EvaluationConfig:
    """Evaluation protocol shared by every method of a run (METHODS.md, "Evaluation protocol").

    Attributes:
        forget_samples: N generated forget-class samples (UA, recognised rate, entropy, forget-class distance).
        retain_samples_per_class: M generated samples per retained class (accuracy, FID, KID).
        batch_size: generation and feature batch.
        fid_features: the feature space of every quality distance (MMD, KID, FID, recall, coverage): ``reader``
            (penultimate features of the noise-aware reader; default, the only space that passes the known-answer
            table of results/studies/quality-known-answers), ``classifier`` (the clean classifier's, the protocol
            before issue 19) or ``inception`` (opt-in second opinion; local weights in ``inception_weights``).
        real_per_class: real test images per class for FID/KID statistics (``None`` = all).
        kid_subsets: random subsets KID is averaged over (its spread is their std); each holds half the generated
            count from both sides, so both sides are resampled.
        relearn_steps: relearning attack (:mod:`unlearnbench.metrics.relearning`): fine-tuning steps on the
            attacker's forget-class training images with the standard loss (0 = no attacks at all);
            ``relearn_images`` images (8 or 32 in METHODS.md), batch = all of them, Adam at ``relearn_lr``.
        relearn_samples: forget-class samples drawn at each reading of every attack (``None`` = ``forget_samples``).
        relearn_readings: the steps inside (0, ``relearn_steps``) after which c_f is read; step 0 and the last step
            always are: the curve, whose maximum is the relearning score.
        inversion_steps: class-embedding inversion (:mod:`unlearnbench.metrics.inversion`): Adam steps at
            ``inversion_lr`` on one embedding row, every weight frozen, from the model's row c_f and from the null
            row (0 = not run); read at step 0, ``inversion_steps`` / 2 and the end.
        no_forget_steps: the no-forget-data attack: Adam steps at ``relearn_lr`` on ``no_forget_images_per_class``
            training images of every retained class (batch ``no_forget_batch_size``, the pretraining's label
            dropout); 0 = not run.
        null_samples: unconditional leakage: null-class samples read as c_f (0 = not measured).
        collapse_floor: a run whose retained accuracy is below this is marked collapsed: its attack scores are not
            robustness ("n/a (collapsed)" on the leaderboard).
    """

    forget_samples: int = 200
    retain_samples_per_class: int = 100
    batch_size: int = 500
    fid_features: Literal["reader", "classifier", "inception"] = "reader"
    inception_weights: str | None = None
    real_per_class: int | None = None
    kid_subsets: int = 100
    seed: int = 1234
    relearn_steps: int = 0
    relearn_images: int = 32
    relearn_lr: float = 1e-4
    relearn_samples: int | None = None
    relearn_readings: list[int] = field(default_factory=lambda: [5, 10, 20, 50])
    inversion_steps: int = 0
    inversion_lr: float = 1e-2
    no_forget_steps: int = 0
    no_forget_images_per_class: int = 32
    no_forget_batch_size: int = 64
    null_samples: int = 0
    collapse_floor: float = 0.5


@dataclass
class UnlearningConfig:
    """What the benchmark runs and the budget every method shares.

    Attributes:
        methods: registered method names or plugin class paths ``pkg.module:Class``.
        method_args: per-method hyper-parameter overrides, e.g. ``{safemax: {lr: 3e-5}}``; a key that names no
            method stops before work.
        variants: extra leaderboard rows of a method with other options, usable in ``methods`` by their name,
            e.g. ``{safemax_fld0.1: {method: safemax, forget_label_dropout: 0.1}}`` (an ablation row).
        steps: optimisation steps of every fine-tuning method (Retrain uses ``pretrain.steps``).
        batch_size: forget and retain batch size of every method.
        include_original: also evaluate the original model (nothing forgotten) as a reference row.
    """

    methods: list[str] = field(default_factory=lambda: ["safemax", "retrain", "salun", "ga"])
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    forget_classes: list[int] = field(default_factory=lambda: [0])
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: int = 200
    batch_size: int = 64
    include_original: bool = True


@dataclass
class RuntimeConfig:
    """Where and how everything runs; identical for every method of a run.

    Attributes:
        devices: devices (processes) per fit. With N > 1 every Trainer fit (pretraining, Retrain, each method) runs
            data-parallel on N devices with ``strategy`` ``ddp_spawn`` (``auto`` means it): the fit is spawned in N
            worker processes and the process that called it (global rank 0's side) gets the trained weights back,
            so planning, evaluation, records, tables, grids and W&B logs happen once, in that one process. The
            *global* batch stays the profile's (``pretrain.batch_size``, ``unlearning.batch_size``): each device
            gets batch / N, and a batch not divisible by N is refused before work. Evaluation (sampling, scores,
            the relearning attack) and the yardstick always run on one device.
        strategy: Lightning strategy; with ``devices`` > 1 only ``auto``/``ddp_spawn`` (Lightning's ``ddp``
            re-executes the command on every rank, which would re-run the whole grid there).
        isolate_runs: run each method's unlearning in a fresh process (default), so that its peak memory does
            not depend on what ran before it; ``false`` runs in-process (faster start-up; the memory figures then
            depend on run order and are marked so).
        output_dir: where ``<profile>/`` results go; the default ``results/local`` is git-ignored. The committed
            reference results (``results/reference``) are read-only to the runner.
        workers: runs computed at once by ``unlearnbench run`` (worker processes on this machine, each run still
            measured in its own child process). On CPU each worker gets max(1, cores // workers) threads unless
            ``num_threads`` is set (threads are part of every key; the number of workers is not: it changes no
            score, only how much the runs' times contend, and the protocol line states it). On CUDA at most one
            worker per visible GPU, each on its own.
    """

    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    num_threads: int | None = None
    isolate_runs: bool = True
    cache_dir: str = ".cache/unlearnbench"
    output_dir: str = "results/local"
    logger: Literal["wandb", "csv", "none"] = "wandb"
    wandb_mode: Literal["offline", "online", "disabled"] = "offline"
    wandb_project: str = "unlearnbench"
    progress: bool = True
    workers: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"runtime.workers must be >= 1, got {self.workers}")
        if self.workers > 1 and self.devices > 1:
            raise ValueError(f"runtime.workers={self.workers} with runtime.devices={self.devices}: give one of them "
                             "(several runs at once, or one data-parallel fit at a time)")
        if self.devices < 1:
            raise ValueError(f"runtime.devices must be >= 1, got {self.devices}")
        if self.devices > 1 and self.strategy not in ("auto", "ddp_spawn"):
            raise ValueError(f"runtime.strategy={self.strategy} with runtime.devices={self.devices}: use "
                             "runtime.strategy=ddp_spawn (or auto). Strategies that re-launch the command on every "
                             "rank (ddp) would re-run the whole grid there")


@dataclass
class Profile:
    """A complete benchmark configuration (one YAML file under ``benchmark/profiles``)."""

    name: str = "custom"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    unlearning: UnlearningConfig = field(default_factory=UnlearningConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


class ConfigError(ValueError):
    """A bad profile name, key or value."""


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def profile_parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(exit_on_error=False, prog="unlearnbench")
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(Profile, nested_key=None, fail_untyped=True)
    return parser


def resolve_named_yaml(name: str | Path, directory: Path, kind: str) -> Path:
    """A ``.yaml`` path as given, or ``<directory>/<name>.yaml``; ConfigError naming what is available otherwise."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{kind} file {str(path)!r} does not exist")
        return path
    candidate = directory / f"{name}.yaml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
        raise ConfigError(f"unknown {kind} {str(name)!r}; available: {known} (or give a path to a .yaml file)")
    return candidate


def resolve_profile_path(profile: str | Path) -> Path:
    return resolve_named_yaml(profile, PROFILE_DIR, "profile")


def profile_chain(profile: str | Path) -> list[str]:
    """The YAML texts to apply in order: a profile's bases first (``extends: <profile>`` or a list of profiles,
    each resolved recursively, in the listed order), then the profile itself without that key, so an extended profile
    states only what it changes (lists are replaced). A profile reached twice (two bases sharing theirs) is applied
    once, where it is first reached: ``extends: [mnist-extended, fashion]`` is mnist, mnist-extended, fashion."""
    chain: dict[Path, str] = {}
    for path, text in _profile_links(profile, ()):
        chain.setdefault(path, text)
    return list(chain.values())


def _profile_links(profile: str | Path, seen: tuple[Path, ...]) -> list[tuple[Path, str]]:
    """(resolved path, YAML text) of every profile in ``profile``'s chain, bases first, repeats kept."""
    import yaml

    path = resolve_profile_path(profile)
    if path.resolve() in seen:
        raise ConfigError(f"profile {path.name} extends itself (through {[p.name for p in seen]})")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"profile {path.name} is not valid YAML: {err}") from err
    bases = content.pop("extends", None) if isinstance(content, dict) else None
    if bases is None:
        return [(path.resolve(), str(path))]
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not bases or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"profile {path.name}: extends must name a profile or a list of profiles, got {bases!r}")
    links = []
    for base in bases:
        if Path(base).suffix in (".yaml", ".yml") and not Path(base).is_absolute():
            base = str(path.parent / base)  # a relative path is relative to the extending file
        links += _profile_links(base, (*seen, path.resolve()))
    return [*links, (path.resolve(), yaml.safe_dump(content, sort_keys=False))]


def load_profile(profile: str | Path, overrides: list[str] | None = None) -> Profile:
    """Load a profile by name or path, then apply ``key=value`` overrides (``unlearning.steps=50``).

    Raises ConfigError naming the bad key or value before any work starts.
    """
    parser = profile_parser()
    args = [arg for path in profile_chain(profile) for arg in ("--config", path)]
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. unlearning.steps=50)")
        args.append(f"--{key.removeprefix('--')}={value}")
    try:
        namespace = parser.parse_args(args)
        namespace.pop("config", None)
        built = parser.instantiate_classes(namespace)
    except Exception as err:  # jsonargparse raises ArgumentError / ValueError with the offending key
        raise ConfigError(f"invalid configuration ({resolve_profile_path(profile).name}): {err}") from err
    return Profile(**{k: built[k] for k in built.keys() if "." not in k})
