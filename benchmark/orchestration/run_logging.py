"""Where a run's training curve and final numbers go besides its local record: W&B or CSV (``runtime.logger``).

The local JSON record is the result; a logger is a view of it. Opening or writing a logger never fails a run: a
logger that cannot start, or a W&B upload that fails, is a warning and the run goes on. W&B runs silently (no
banners, no "wandb: ..." sync hints, no capture of the console): the suite's own progress lines are what a user
reads. ``WANDB_MODE`` in the environment wins over ``runtime.wandb_mode`` (:func:`wandb_mode`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from lightning.pytorch.loggers import Logger

    from unlearnbench.foundation.config import Profile


def wandb_mode(configured: str) -> str:
    """The user's ``WANDB_MODE`` environment variable wins over the profile's ``runtime.wandb_mode``."""
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env in ("disabled", "offline", "online"):
        return env
    if env in ("dryrun",):
        return "offline"
    if env in ("run",):
        return "online"
    return configured


def logs_to_wandb(profile: Profile) -> bool:
    """Whether runs of ``profile`` log to W&B: ``runtime.logger`` is ``wandb`` and W&B is not disabled."""
    return profile.runtime.logger == "wandb" and wandb_mode(profile.runtime.wandb_mode) != "disabled"


def open_logger(profile: Profile, out_dir: Path, name: str, config: dict[str, Any]) -> Logger | Literal[False]:
    """The Lightning logger of one run named ``name``: a silent ``WandbLogger`` (group = profile name, files under
    ``$WANDB_DIR`` or ``<out_dir>/wandb``, ``config`` as the run's config), a ``CSVLogger`` under
    ``<out_dir>/csv_logs``, or False (``runtime.logger`` none, W&B disabled, or the logger could not start: then a
    warning says so and the results are still written locally)."""
    rt = profile.runtime
    try:
        if logs_to_wandb(profile):
            import wandb
            from lightning.pytorch.loggers import WandbLogger

            save_dir = Path(os.environ.get("WANDB_DIR") or out_dir / "wandb")
            save_dir.mkdir(parents=True, exist_ok=True)
            logger = WandbLogger(project=os.environ.get("WANDB_PROJECT") or rt.wandb_project, name=name,
                                 group=profile.name, save_dir=str(save_dir),
                                 offline=wandb_mode(rt.wandb_mode) == "offline", config=config,
                                 settings=wandb.Settings(silent=True, console="off"))
            # Lightning always passes anonymous=None, which wandb 0.31 answers with a deprecation warning printed
            # before its silent setting applies; not passing it changes nothing else.
            getattr(logger, "_wandb_init", {}).pop("anonymous", None)
            return logger
        if rt.logger == "csv":
            from lightning.pytorch.loggers import CSVLogger

            return CSVLogger(save_dir=str(out_dir / "csv_logs"), name=name)
    except Exception as err:
        warnings.warn(f"logger {rt.logger} unavailable ({err}); results are still written locally", stacklevel=1)
    return False


def log_final(profile: Profile, logger: Logger | Literal[False], record: dict[str, Any], grid_path: Path) -> None:
    """Send a finished run's numbers to its W&B run and close it: every numeric field of ``record`` as
    ``final/<field>`` (logged and in the run summary) and the sample grid at ``grid_path`` as an image. Nothing for
    other loggers (a CSV logger has the curve already). A failed upload is a warning: the local record is safe."""
    if not logger or not logs_to_wandb(profile):
        return
    try:
        import wandb

        run = logger.experiment
        scalars: dict[str, Any] = {f"final/{k}": v for k, v in record.items()
                                   if isinstance(v, int | float) and not isinstance(v, bool)}
        if grid_path.is_file():
            scalars["samples"] = wandb.Image(str(grid_path))
        run.log(scalars)
        run.summary.update({k: v for k, v in scalars.items() if k != "samples"})
        run.finish()
    except Exception as err:
        warnings.warn(f"W&B logging failed ({err}); the local record is safe", stacklevel=1)
