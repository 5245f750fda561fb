"""Shared test fixtures: one thread per worker, W&B disabled, tiny configs, a per-session cache."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> str:
    """A cache directory shared by the whole test session (trained tiny models are reused across tests)."""
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def smoke_profile(session_cache):
    """The smoke profile (8×8 digits) with a session cache, no progress bars and no logger."""
    from unlearnbench.foundation.config import load_profile

    return load_profile("smoke", [f"runtime.cache_dir={session_cache}", "runtime.progress=false",
                                  "runtime.logger=none"])


@pytest.fixture
def tiny_profile(session_cache):
    """Even smaller than smoke: 60 pretraining steps, for tests that need *a* trained model, not a good one."""
    from unlearnbench.foundation.config import load_profile

    return load_profile("smoke", [f"runtime.cache_dir={session_cache}", "runtime.progress=false",
                                  "runtime.logger=none", "pretrain.steps=60", "pretrain.warmup_steps=10",
                                  "classifier.epochs=1", "classifier.min_accuracy=0.0"])


@pytest.fixture
def profile(tiny_profile):
    """The tiny profile with an unlearning budget of 4 steps at batch 16 (method tests)."""
    import copy

    p = copy.deepcopy(tiny_profile)
    p.unlearning.steps = 4
    p.unlearning.batch_size = 16
    return p


@pytest.fixture
def data(profile):
    """The tiny profile's data at its unlearning batch size."""
    from unlearnbench.datasets import UnlearningDataModule

    return UnlearningDataModule(profile.data, batch_size=profile.unlearning.batch_size, seed=profile.seed)
