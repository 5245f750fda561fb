"""Where a run's training curve and final numbers go besides its local record: W&B or CSV (``runtime.logger``);
and, at the end of a plan, the leaderboard itself as one W&B summary run (:func:`log_leaderboard`).

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


def open_logger(profile: Profile, out_dir: Path, name: str, config: dict[str, Any],
                job_type: str | None = None) -> Logger | Literal[False]:
    """The Lightning logger of one run named ``name``: a silent ``WandbLogger`` (group = profile name, job type =
    ``job_type``, the leaderboard row, so the W&B UI groups a method's runs; files under ``$WANDB_DIR`` or
    ``<out_dir>/wandb``, ``config`` as the run's config), a ``CSVLogger`` under
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
                                 group=profile.name, job_type=job_type, save_dir=str(save_dir),
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


def log_leaderboard(profile: Profile, out_dir: Path, records: list[dict[str, Any]], protocol: str = "") -> None:
    """One W&B summary run for a plan, in the runs' project and group (``job_type`` "leaderboard"): the
    leaderboard as a ``wandb.Table`` named ``leaderboard`` (one row per method × forget class × seed, every numeric
    score of the records), the aggregated table as ``leaderboard_by_method``, the figure and every run's sample grid,
    and the protocol and profile as config. Offline by default like every run (``runtime.wandb_mode``); nothing when
    runs do not log to W&B. A failure is a warning: the local leaderboard is written already."""
    if not logs_to_wandb(profile) or not records:
        return
    try:
        import pandas as pd
        import wandb

        from unlearnbench.foundation.cache import to_jsonable

        rows = pd.DataFrame(records)
        labels = [c for c in ("method", "base_method", "forget_class", "forget_class_name", "seed", "status")
                  if c in rows]
        scores = [c for c in rows.columns if c not in labels and pd.api.types.is_numeric_dtype(rows[c])
                  and not pd.api.types.is_bool_dtype(rows[c])]
        save_dir = Path(os.environ.get("WANDB_DIR") or out_dir / "wandb")
        save_dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(project=os.environ.get("WANDB_PROJECT") or profile.runtime.wandb_project,
                         group=profile.name, name=f"{profile.name}-leaderboard", job_type="leaderboard",
                         dir=str(save_dir), mode=wandb_mode(profile.runtime.wandb_mode),
                         config={"protocol": protocol, "profile": to_jsonable(profile)},
                         settings=wandb.Settings(silent=True, console="off"), reinit="create_new")
        logged: dict[str, Any] = {"leaderboard": wandb.Table(dataframe=rows[labels + scores])}
        board = out_dir / "leaderboard.json"
        if board.is_file():
            logged["leaderboard_by_method"] = wandb.Table(dataframe=pd.read_json(board))
        if (out_dir / "leaderboard.png").is_file():
            logged["figure"] = wandb.Image(str(out_dir / "leaderboard.png"))
        grids = [(r, out_dir / str(r.get("grid_path"))) for r in records if r.get("grid_path")]
        logged["grids"] = [wandb.Image(str(path), caption=f"{r['method']}, forget class {r['forget_class']}, "
                                                          f"seed {r['seed']}") for r, path in grids if path.is_file()]
        run.log(logged)
        run.finish()
    except Exception as err:
        warnings.warn(f"W&B leaderboard logging failed ({err}); the local leaderboard is written", stacklevel=1)
