r"""Class-embedding inversion: does the frozen network still draw c_f behind some label?

The class-conditional counterpart of concept inversion for text-to-image models (textual inversion used as an
attack on erased concepts): every weight of the unlearned model stays frozen and one class-embedding vector
:math:`e` is learned from the attacker's images of c_f with the standard loss

.. math:: e^\star = \arg\min_e\ \mathbb{E}_{x_0, t, \varepsilon}
          \lVert \varepsilon - \varepsilon_\theta(x_t, t;\, e) \rVert^2 ,

then c_f is sampled with :math:`e^\star` in place of its row (CFG against the model's own null row) and read by the
yardstick. Two starts (:data:`STARTS`):

- ``row``: the model's own row c_f, re-learned (what a method left in that row);
- ``fresh``: a fresh vector from a neutral start, the null class's row (what the rest of the network still draws
  when asked the right way, whatever the method did to row c_f).

A method that only moved row c_f (or hid c_f behind a label) is found by ``fresh``; Retrain, which never learned
c_f, is the calibration of "not recoverable", the original of "recoverable".
"""

from __future__ import annotations

import torch
from torch import nn

from unlearnbench.foundation.config import RuntimeConfig
from unlearnbench.foundation.diffusion import ConditionalDiffusion
from unlearnbench.metrics.relearning import Reading, fine_tune_attack

STARTS = ("row", "fresh")


def class_embedding(model: ConditionalDiffusion) -> nn.Embedding:
    """The UNet's class-embedding table (K + 1 rows, the last the null class)."""
    table = getattr(model.unet, "class_embedding", None)
    if not isinstance(table, nn.Embedding):
        raise ValueError("class-embedding inversion needs a UNet2DModel with a class-embedding table "
                         "(num_class_embeds)")
    return table


def only_row(forget_class: int, start: str):
    """``trainable`` for :func:`~unlearnbench.metrics.relearning.fine_tune_attack`: the embedding table of the
    copy, its row c_f set to the ``start`` vector and every other row's gradient zeroed (Adam then never moves
    them: its update is 0 where every gradient is 0)."""
    if start not in STARTS:
        raise ValueError(f"unknown inversion start {start!r}: use one of {STARTS}")

    def trainable(model: ConditionalDiffusion) -> list[nn.Parameter]:
        table = class_embedding(model)
        with torch.no_grad():
            if start == "fresh":
                table.weight[forget_class] = table.weight[model.null_class]
        mask = torch.zeros_like(table.weight[:, :1])
        mask[forget_class] = 1.0
        table.weight.register_hook(lambda grad: grad * mask.to(grad))
        return [table.weight]

    return trainable


def invert_embedding(model: ConditionalDiffusion, images: torch.Tensor, forget_class: int, start: str, steps: int,
                     lr: float, readings: list[int], runtime: RuntimeConfig, seed: int, read: Reading
                     ) -> dict[int, dict]:
    """Learn row c_f of a frozen copy of ``model`` from ``images`` (all of class c_f, full batch) for ``steps``
    Adam steps at ``lr``, starting from ``start``; ``read`` the copy before and at each reading step."""
    labels = torch.full((len(images),), forget_class, dtype=torch.long)
    return fine_tune_attack(model, images, labels, steps, lr, readings, runtime, seed, read,
                            trainable=only_row(forget_class, start))
