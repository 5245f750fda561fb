r"""The class-conditional diffusion model every method starts from, and its sampler.

Model (METHODS.md, "Shared model recipe"): a diffusers ``UNet2DModel`` predicting ε with a class embedding of
``K + 1`` entries, the last one being the *null* class used for classifier-free guidance. Forward process with
T = 1000 and linear β from 1e-4 to 0.02:

.. math:: x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\qquad
          L(x_0, c) = \lVert \varepsilon - \varepsilon_\theta(x_t, t, c) \rVert^2 .

Guided prediction at sampling:

.. math:: \tilde\varepsilon = (1+w)\,\varepsilon_\theta(x,t,c) - w\,\varepsilon_\theta(x,t,\varnothing).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch import nn
from tqdm.auto import tqdm

from unlearnbench.foundation.config import SamplerConfig, UNetConfig

NUM_TRAIN_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02

Reduction = Literal["mean", "pixel_sum", "none"]


class CheckpointError(RuntimeError):
    """A missing, corrupt or incompatible diffusion checkpoint."""


def build_unet(config: UNetConfig, image_size: int, channels: int, num_classes: int) -> UNet2DModel:
    """A fresh ``UNet2DModel`` with ``num_classes + 1`` class embeddings (the last is the null class)."""
    down, up = [], []
    size = image_size
    for _ in config.block_out_channels:
        down.append("AttnDownBlock2D" if size in config.attention_resolutions else "DownBlock2D")
        size //= 2
    size = image_size // 2 ** (len(config.block_out_channels) - 1)
    for _ in config.block_out_channels:
        up.append("AttnUpBlock2D" if size in config.attention_resolutions else "UpBlock2D")
        size *= 2
    return UNet2DModel(
        sample_size=image_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        norm_num_groups=config.norm_num_groups,
        dropout=config.dropout,
        num_class_embeds=num_classes + 1,
    )


def noise_scheduler() -> DDPMScheduler:
    """The fixed training noise schedule (T = 1000, linear β 1e-4 → 0.02, ε-prediction)."""
    return DDPMScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        beta_start=BETA_START,
        beta_end=BETA_END,
        beta_schedule="linear",
        prediction_type="epsilon",
        clip_sample=True,
    )


class ConditionalDiffusion(nn.Module):
    """ε-prediction UNet + the training noise schedule; class ``num_classes`` is the null (unconditional) class."""

    def __init__(self, unet: UNet2DModel, num_classes: int) -> None:
        super().__init__()
        if unet.config.num_class_embeds != num_classes + 1:
            raise CheckpointError(
                f"the UNet has {unet.config.num_class_embeds} class embeddings, expected {num_classes + 1} "
                f"({num_classes} classes + 1 null class for classifier-free guidance)"
            )
        self.unet = unet
        self.num_classes = num_classes
        self.scheduler = noise_scheduler()
        self.register_buffer("alphas_cumprod", self.scheduler.alphas_cumprod.clone().float(), persistent=False)

    @classmethod
    def create(cls, config: UNetConfig, image_size: int, channels: int, num_classes: int) -> ConditionalDiffusion:
        return cls(build_unet(config, image_size, channels, num_classes), num_classes)

    @property
    def null_class(self) -> int:
        return self.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c = self.unet.config
        return (c.in_channels, c.sample_size, c.sample_size)

    # -- forward process and the standard loss -------------------------------------------------------------
    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """ε_θ(x_t, t, c)."""
        return self.unet(x_t, t, class_labels=labels).sample

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod.to(x0.device)[t].view(-1, *([1] * (x0.ndim - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def sample_timesteps(self, n: int, device: torch.device | str) -> torch.Tensor:
        return torch.randint(0, NUM_TRAIN_TIMESTEPS, (n,), device=device)

    def drop_labels(self, labels: torch.Tensor, p: float) -> torch.Tensor:
        """Replace each label by the null class with probability ``p`` (CFG training)."""
        if p <= 0:
            return labels
        drop = torch.rand(labels.shape, device=labels.device) < p
        return torch.where(drop, torch.full_like(labels, self.null_class), labels)

    def guided_eps(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, w: float) -> torch.Tensor:
        """(1 + w)·ε_θ(x, t, c) − w·ε_θ(x, t, ∅), one batched forward pass (w = 0: conditional only)."""
        if w == 0:
            return self(x, t, labels)
        null = torch.full_like(labels, self.null_class)
        t2 = t.expand(x.shape[0]) if t.ndim == 0 else t
        eps = self(torch.cat([x, x]), torch.cat([t2, t2]), torch.cat([labels, null]))
        cond, uncond = eps.chunk(2)
        return (1 + w) * cond - w * uncond

    def denoising_loss(self, x0: torch.Tensor, labels: torch.Tensor, reduction: Reduction = "mean",
                       guidance: float = 0.0) -> torch.Tensor:
        """The standard loss L(x_0, c) = ‖ε − ε_θ(x_t, t, c)‖² with t ~ U{0..T−1}, ε ~ N(0, I).

        ``reduction``: ``mean`` over all elements, ``pixel_sum`` (sum over pixels, mean over the batch, as the
        reference DDPM code does), or ``none`` (per-sample sum over pixels). ``guidance`` > 0 scores the
        CFG-guided prediction instead (SalUn's saliency loss).
        """
        noise = torch.randn_like(x0)
        t = self.sample_timesteps(x0.shape[0], x0.device)
        x_t = self.add_noise(x0, noise, t)
        eps = self.guided_eps(x_t, t, labels, guidance) if guidance else self(x_t, t, labels)
        sq = (noise - eps).pow(2)
        if reduction == "mean":
            return sq.mean()
        per_sample = sq.flatten(1).sum(1)
        return per_sample if reduction == "none" else per_sample.mean()

    # -- sampling --------------------------------------------------------------------------------------------
    def consistent_eps(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        r"""ε recomputed from the clipped x0 prediction, as guided-diffusion's DDIM does with ``clip_denoised``.

        .. math::
            \hat x_0 = \mathrm{clip}\big((x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon)/\sqrt{\bar\alpha_t}, -1, 1\big),
            \qquad \varepsilon' = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0)/\sqrt{1-\bar\alpha_t}.

        Measured on the mnist original at w = 2 (200 samples): diffusers' own DDIM clipping, which clips x0 but
        keeps the unclipped ε in the direction term, gets 17 % of samples recognised; this consistent form 100 %
        (DDPM-1000: 100 %). No clipping at all also gives 100 %, but with every ε scaled by 0.97 it falls to 80 %
        against 98.5 % here: unclipped DDIM would blame a slight, uniform ε shrinkage on the retained classes.
        """
        a = self.alphas_cumprod.to(x_t.device)[t].to(x_t.dtype)
        x0 = ((x_t - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    def sampling_scheduler(self, sampler: SamplerConfig) -> DDIMScheduler | DDPMScheduler:
        """diffusers' scheduler for the protocol: ``sampler.steps`` steps of DDIM (generalized, η) or DDPM.

        The scheduler's own x0 clipping is used where it is consistent (DDPM's posterior mean is computed from the
        clipped x0 alone); DDIM's ``clip_sample`` keeps the unclipped ε in its direction term, so DDIM's consistent
        clipping is :meth:`consistent_eps` instead and the scheduler's flag stays off.
        """
        if sampler.kind == "ddim":
            sched = DDIMScheduler.from_config(self.scheduler.config, clip_sample=False)
        else:
            sched = DDPMScheduler.from_config(self.scheduler.config, clip_sample=sampler.clip == "consistent")
        sched.set_timesteps(sampler.steps)
        return sched

    @torch.inference_mode()
    def sample(
        self,
        labels: torch.Tensor | list[int],
        sampler: SamplerConfig | None = None,
        seed: int = 0,
        batch_size: int = 500,
        progress: bool = False,
        desc: str = "sampling",
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Generate one image per label with CFG; returns float32 CPU images in [-1, 1], shape (N, C, H, W).

        Deterministic for a fixed ``seed``: the initial noise of all N samples is drawn at once from a CPU
        generator (or given as ``noise``, shape (N, C, H, W)), and the per-step noise of DDPM / DDIM with η > 0
        from the same generator, batch by batch.
        """
        sampler = sampler or SamplerConfig()
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > self.null_class):
            raise ValueError(f"labels must lie in 0..{self.null_class} (the last one is the null class)")
        device = next(self.unet.parameters()).device
        dtype = next(self.unet.parameters()).dtype
        generator = torch.Generator().manual_seed(seed)
        if noise is not None and tuple(noise.shape) != (len(labels), *self.image_shape):
            raise ValueError(f"noise must have shape {(len(labels), *self.image_shape)}, got {tuple(noise.shape)}")
        x_all = torch.randn((len(labels), *self.image_shape), generator=generator) if noise is None else noise
        sched = self.sampling_scheduler(sampler)
        was_training = self.training
        self.eval()
        out = []
        n_batches = math.ceil(len(labels) / batch_size)
        bar = tqdm(total=n_batches * len(sched.timesteps), desc=desc, disable=not progress, leave=False)
        for lab, x in zip(labels.split(batch_size), x_all.split(batch_size), strict=True):
            x, lab = x.to(device, dtype), lab.to(device)
            for t in sched.timesteps:
                eps = self.guided_eps(x, t.to(device), lab, sampler.guidance)
                if sampler.kind == "ddim":
                    if sampler.clip == "consistent":
                        eps = self.consistent_eps(x, t, eps)
                    x = sched.step(eps, t, x, eta=sampler.eta, generator=generator).prev_sample
                else:
                    x = sched.step(eps, t, x, generator=generator).prev_sample
                bar.update(1)
            out.append(x.float().clamp(-1, 1).cpu())
        bar.close()
        self.train(was_training)
        return torch.cat(out) if out else torch.empty((0, *self.image_shape))

    # -- persistence (diffusers format + metadata) --------------------------------------------------------
    def save(self, directory: str | Path, metadata: dict | None = None) -> None:
        """Write ``unet/`` (diffusers ``save_pretrained``), ``scheduler/`` and ``metadata.json``."""
        directory = Path(directory)
        self.unet.save_pretrained(directory / "unet")
        self.scheduler.save_pretrained(directory / "scheduler")
        meta = {"num_classes": self.num_classes, **(metadata or {})}
        (directory / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))

    @staticmethod
    def check_checkpoint(directory: str | Path, num_classes: int | None = None, image_size: int | None = None,
                         channels: int | None = None) -> tuple[Path, int]:
        """Check a checkpoint directory from its ``config.json`` alone (no weights are read): cheap, before work.

        Returns (the UNet directory, its number of real classes). Raises :class:`CheckpointError` naming the
        problem and the fix: no diffusers UNet there, no class embedding, or a class count / image size / channel
        count that does not match the data.
        """
        directory = Path(directory).expanduser()
        unet_dir = directory / "unet" if (directory / "unet" / "config.json").is_file() else directory
        config_path = unet_dir / "config.json"
        if not config_path.is_file():
            raise CheckpointError(
                f"no diffusers UNet at {directory}: expected {directory}/unet/config.json or {directory}/config.json "
                "(save one with UNet2DModel.save_pretrained, or delete the directory to retrain)"
            )
        try:
            config = json.loads(config_path.read_text())
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{config_path} is not valid JSON ({err}): the checkpoint is corrupt; "
                                  "save it again with UNet2DModel.save_pretrained") from err
        embeds = config.get("num_class_embeds")
        if not embeds or embeds < 2:
            raise CheckpointError(f"{unet_dir}: the UNet has no class embedding (num_class_embeds = {embeds}); the "
                                  "suite needs a class-conditional UNet2DModel with K + 1 embeddings "
                                  "(K classes + null)")
        found = int(embeds) - 1
        if num_classes is not None and found != num_classes:
            raise CheckpointError(f"{unet_dir}: num_class_embeds is {embeds}, expected {num_classes + 1} "
                                  f"({num_classes} classes + 1 null class for classifier-free guidance)")
        if image_size is not None and config.get("sample_size") != image_size:
            raise CheckpointError(f"{unet_dir}: sample_size {config.get('sample_size')} != the data's image size "
                                  f"{image_size} (set data.image_size={config.get('sample_size')} or resave the UNet)")
        if channels is not None and config.get("in_channels") != channels:
            raise CheckpointError(f"{unet_dir}: in_channels {config.get('in_channels')} != the data's {channels} "
                                  "channels")
        return unet_dir, found

    @classmethod
    def load(cls, directory: str | Path, num_classes: int | None = None, image_size: int | None = None,
             channels: int | None = None) -> ConditionalDiffusion:
        """Load a saved model or a user's own class-conditional ``UNet2DModel`` directory.

        ``directory`` may hold ``unet/config.json`` (this suite's layout) or ``config.json`` itself (a bare
        diffusers UNet); see :meth:`check_checkpoint` for what is checked.
        """
        unet_dir, found = cls.check_checkpoint(directory, num_classes, image_size, channels)
        try:
            unet = UNet2DModel.from_pretrained(unet_dir)
        except Exception as err:
            raise CheckpointError(
                f"could not load the UNet weights in {unet_dir} ({type(err).__name__}): the checkpoint is corrupt "
                "or incomplete; delete the directory so that the suite trains it again, or point to a valid one"
            ) from err
        return cls(unet, found)

    def clone(self) -> ConditionalDiffusion:
        """An independent copy with the same weights (methods never modify the original in place)."""
        copy = ConditionalDiffusion(UNet2DModel.from_config(self.unet.config), self.num_classes)
        copy.unet.load_state_dict(self.unet.state_dict())
        return copy.to(next(self.unet.parameters()).device)
