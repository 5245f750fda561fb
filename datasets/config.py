"""Which images the suite uses (torch-free, so that configuration loads without the heavy libraries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Split = Literal["train", "test"]


@dataclass
class DataConfig:
    """Which images the suite uses.

    Attributes:
        source: a registered source name (``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``folder``).
        path: local directory for sources that read files (``mnist`` IDX, ``fashion-mnist``, ``cifar10``,
            ``folder``); ``None`` uses the source's default.
        image_size: images are resized (area/bilinear, antialiased) to ``image_size``×``image_size``.
        max_per_class: keep at most this many training images per class (``None`` = all); for tests.
    """

    source: str = "mnist"
    path: str | None = None
    image_size: int = 16
    max_per_class: int | None = None
