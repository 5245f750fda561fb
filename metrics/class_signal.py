r"""Where in the diffusion schedule does the class label matter? (issue 10: "Where in t is the class?")

For real images :math:`x_0` of class :math:`c`, noise :math:`\varepsilon` and a timestep :math:`t`,
:math:`x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon`, and the model's predictions with the
true label, the null label and the next class :math:`c' = (c + 1) \bmod K`:

.. math::
    D_\varnothing(t) = \frac{\mathbb{E}\lVert \varepsilon_\theta(x_t, t, c) - \varepsilon_\theta(x_t, t, \varnothing)
    \rVert^2}{\mathbb{E}\lVert\varepsilon\rVert^2},\qquad
    D_\text{swap}(t) = \frac{\mathbb{E}\lVert \varepsilon_\theta(x_t, t, c) - \varepsilon_\theta(x_t, t, c')
    \rVert^2}{\mathbb{E}\lVert\varepsilon\rVert^2}.

Both are 0 where denoising ignores the label. SAFEMax weights its forget loss by
:math:`\psi(t) = e^{-\lambda t / T}`; where the class signal is small, "stop denoising :math:`c_f`" cannot be told
apart from "stop denoising". Same images, noise and timesteps for every model (seeded), so curves of different
models are comparable.

A measured curve is stored with its meta (``class_signal.json``); :func:`curve_identity` (``CLASS_SIGNAL_VERSION``
and the original model's identity) says when a stored curve may be reused (:func:`stored_curves`). The code
fingerprint in the meta is provenance only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from unlearnbench.foundation.cache import atomic_path, to_jsonable, write_json_atomic
from unlearnbench.foundation.config import Profile
from unlearnbench.foundation.diffusion import NUM_TRAIN_TIMESTEPS, ConditionalDiffusion
from unlearnbench.foundation.report_files import pyplot, save_figure

DEFAULT_TIMESTEPS = (1, 10, 25, 50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 800, 900, 999)
# Bump when the numbers :func:`class_signal` computes change (its formula, noise, timesteps or image selection):
# stored curves carry it in their meta (:func:`curve_identity`) and are measured again under a new version.
CLASS_SIGNAL_VERSION = 1


@torch.inference_mode()
def class_signal(model: ConditionalDiffusion, images: torch.Tensor, labels: torch.Tensor,
                 timesteps: tuple[int, ...] = DEFAULT_TIMESTEPS, seed: int = 0,
                 batch_size: int = 500) -> list[dict]:
    """One row per (timestep, class): ``d_null`` and ``d_swap`` (see the module docstring) and ``n`` images.

    Raises ValueError for a timestep outside 0..T−1 or labels outside the model's classes.
    """
    if any(not 0 <= t < NUM_TRAIN_TIMESTEPS for t in timesteps):
        raise ValueError(f"timesteps must lie in 0..{NUM_TRAIN_TIMESTEPS - 1}, got {timesteps}")
    labels = labels.long()
    if int(labels.min()) < 0 or int(labels.max()) >= model.num_classes:
        raise ValueError(f"labels must lie in 0..{model.num_classes - 1}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=generator)
    swapped = (labels + 1) % model.num_classes
    rows = []
    for t in timesteps:
        sq_null = torch.empty(len(images), dtype=torch.float64)
        sq_swap = torch.empty(len(images), dtype=torch.float64)
        for start in range(0, len(images), batch_size):
            sl = slice(start, start + batch_size)
            x0, eps, y = images[sl].to(device), noise[sl].to(device), labels[sl].to(device)
            tt = torch.full((len(x0),), t, dtype=torch.long, device=device)
            x_t = model.add_noise(x0, eps, tt)
            null = torch.full_like(y, model.null_class)
            out = model(torch.cat([x_t] * 3), torch.cat([tt] * 3), torch.cat([y, null, swapped[sl].to(device)]))
            cond, uncond, other = out.float().chunk(3)
            sq_null[sl] = (cond - uncond).pow(2).flatten(1).sum(1).double().cpu()
            sq_swap[sl] = (cond - other).pow(2).flatten(1).sum(1).double().cpu()
        scale = float(noise.pow(2).flatten(1).sum(1).double().mean())
        for c in labels.unique().tolist():
            mask = labels == c
            rows.append({"t": int(t), "class": int(c), "n": int(mask.sum()),
                         "d_null": float(sq_null[mask].mean()) / scale, "d_swap": float(sq_swap[mask].mean()) / scale})
    model.train(was_training)
    return rows


def psi(t: torch.Tensor | float, lam: float) -> torch.Tensor:
    """SAFEMax's timestep weight ψ(t) = exp(−λ t / T)."""
    return torch.exp(-lam * torch.as_tensor(t, dtype=torch.float64) / NUM_TRAIN_TIMESTEPS)


def write_class_signal(rows: list[dict], out_dir: str | Path, meta: dict) -> pd.DataFrame:
    """Write ``class_signal.csv`` (one row per timestep × class), ``class_signal.json`` (``meta``) and
    ``class_signal.png`` (mean over classes against t, with ψ(t) for λ = 1 and 50) under ``out_dir``, atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    with atomic_path(out / "class_signal.csv") as tmp:
        frame.to_csv(tmp, index=False)
    write_json_atomic(out / "class_signal.json", meta)
    mean = frame.groupby("t")[["d_null", "d_swap"]].mean()
    fig, ax = pyplot().subplots(figsize=(6.4, 4.2), dpi=120)
    for _, group in frame.groupby("class"):
        ax.plot(group["t"], group["d_swap"], color="tab:blue", alpha=0.15, lw=0.8)
    ax.plot(mean.index, mean["d_swap"], "o-", color="tab:blue", label="D_swap(t): label c vs c+1 (mean over classes)")
    ax.plot(mean.index, mean["d_null"], "s--", color="tab:orange", label="D_null(t): label c vs null")
    ax.set_xlabel("timestep t (of 1000)")
    ax.set_ylabel("‖ε(c) − ε(other)‖² / ‖ε‖²")
    twin = ax.twinx()
    ts = torch.arange(0, NUM_TRAIN_TIMESTEPS)
    for lam, style in ((1.0, ":"), (50.0, "-.")):
        twin.plot(ts, psi(ts, lam), style, color="grey", lw=1, label=f"SAFEMax ψ(t), λ = {lam:g}")
    twin.set_ylabel("ψ(t)")
    twin.set_ylim(0, 1.05)
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
    ax.legend(lines, labels, fontsize=7, loc="upper right")
    ax.set_title(f"Where in t is the class? {meta.get('model', '')}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "class_signal.png")
    return frame


def curve_identity(profile: Profile, images_per_class: int, pretrained: str | None = None) -> dict[str, Any]:
    """What a measured curve depends on, as JSON values: :data:`CLASS_SIGNAL_VERSION`, the original model (its
    UNet, pretraining steps and :func:`~unlearnbench.foundation.pretraining.original_identity`: the cache key of
    the trained original, or the content hash of ``pretrained``), the images per class and the seed.

    Stored in ``class_signal.json`` by :func:`measure_original`; stored curves whose meta has the same values can be
    reused. The code fingerprint the meta also records is provenance, never compared.
    """
    from unlearnbench.foundation.pretraining import original_identity

    return to_jsonable({"class_signal_version": CLASS_SIGNAL_VERSION, "unet": vars(profile.unet),
                        "pretrain_steps": profile.pretrain.steps,
                        "original_identity": original_identity(profile, pretrained),
                        "images_per_class": images_per_class, "seed": profile.seed})


def stored_curves(out_dir: str | Path, identity: dict[str, Any]) -> pd.DataFrame | None:
    """The curves stored under ``out_dir`` if its ``class_signal.json`` has every value of ``identity``
    (:func:`curve_identity`), else None (none there, unreadable, or measured for another model or version)."""
    out = Path(out_dir)
    try:
        meta = json.loads((out / "class_signal.json").read_text())
        frame = pd.read_csv(out / "class_signal.csv")
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or any(meta.get(key) != value for key, value in identity.items()):
        return None
    return frame


def measure_original(profile: Profile, images_per_class: int, out_dir: str | Path, pretrained: str | None = None,
                     command: str = "") -> pd.DataFrame:
    """``unlearnbench class-signal``: the class signal of the profile's original (trained or loaded from the cache,
    or ``pretrained``) on the first ``images_per_class`` test images of each class, written to ``out_dir``."""
    from unlearnbench.datasets import UnlearningDataModule
    from unlearnbench.foundation.pretraining import load_original
    from unlearnbench.foundation.provenance import code_fingerprint, hardware, hardware_label
    from unlearnbench.foundation.trainer import configure_threads, pick_device
    from unlearnbench.metrics.fid import select_per_class

    if images_per_class < 1:
        raise ValueError("--images-per-class must be at least 1")
    configure_threads(profile.runtime)
    data = UnlearningDataModule(profile.data, batch_size=profile.unlearning.batch_size, seed=profile.seed)
    model, _ = load_original(profile, pretrained)
    device = pick_device(profile.runtime)
    images, labels = data.split("test")
    keep = select_per_class(labels, images_per_class)
    rows = class_signal(model.to(device), images[keep], labels[keep], seed=profile.seed)
    params = sum(p.numel() for p in model.unet.parameters())
    meta = {"profile": profile.name, **curve_identity(profile, images_per_class, pretrained),
            "parameters": params, "model": f"{params / 1e6:.2f}M parameters, {profile.name}",
            "pretrained": pretrained, "hardware": hardware_label(hardware(device)),
            "code_fingerprint": code_fingerprint(), "command": command}  # code_fingerprint: provenance only
    return write_class_signal(rows, out_dir, meta)
