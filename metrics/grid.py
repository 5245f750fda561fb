"""Generated samples as a picture: one row per class, the forgotten class framed in red."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from unlearnbench.foundation.report_files import save_figure

FORGET_COLOUR = "#d62728"


def class_rows(images: torch.Tensor, labels: torch.Tensor, num_classes: int, per_class: int = 8,
               pad: int = 1) -> list[np.ndarray]:
    """For each class k, a strip (H, per_class·(W+pad)−pad, C) in [0, 1] of its first ``per_class`` images.

    Images are (N, C, H, W) in [−1, 1]; missing slots (fewer samples than ``per_class``) stay white.
    """
    n, c, h, w = images.shape
    rows = []
    for k in range(num_classes):
        strip = np.ones((h, per_class * (w + pad) - pad, c), dtype=np.float32)
        picks = images[labels == k][:per_class]
        for j, img in enumerate(picks):
            x0 = j * (w + pad)
            strip[:, x0:x0 + w] = ((img.float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
        rows.append(strip)
    return rows


def save_sample_grid(images: torch.Tensor, labels: torch.Tensor, path: str | Path, class_names: Sequence[str],
                     forget_class: int | None = None, per_class: int = 8, title: str | None = None) -> Path:
    """Write a PNG with one row per class (its first ``per_class`` samples), labelled ``k: name``.

    The row of ``forget_class`` gets a red frame and a red "(forgotten)" label. The file is written via a
    temporary sibling and renamed, so a crash never leaves a half-written PNG. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = class_rows(images, labels, len(class_names), per_class)
    aspect = rows[0].shape[1] / rows[0].shape[0]
    row_height = 0.55
    fig = Figure(figsize=(1.6 + row_height * aspect, 0.4 + row_height * len(rows)), dpi=100)
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for k, (ax, strip) in enumerate(zip(axes, rows, strict=True)):
        grey = strip.shape[2] == 1
        ax.imshow(strip[:, :, 0] if grey else strip, cmap="gray" if grey else None, vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        forgotten = forget_class is not None and k == forget_class
        label = f"{k}: {class_names[k]}" + ("\n(forgotten)" if forgotten else "")
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8,
                      color=FORGET_COLOUR if forgotten else "black",
                      fontweight="bold" if forgotten else "normal")
        for spine in ax.spines.values():
            spine.set_edgecolor(FORGET_COLOUR if forgotten else "lightgrey")
            spine.set_linewidth(3 if forgotten else 0.5)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, format="png")
