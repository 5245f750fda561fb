"""``unlearnbench``: run a profile, rebuild its leaderboard, list methods and profiles.

Examples::

    unlearnbench run --profile mnist
    unlearnbench run --profile smoke --methods safemax,ga --forget-classes 0,3 --seeds 0,1 --steps 100
    unlearnbench run --profile mnist --set unlearning.method_args='{safemax: {lr: 3e-5}}' --force
    unlearnbench run --profile mnist --methods my_pkg.my_module:MyMethod
    unlearnbench leaderboard --profile mnist
    unlearnbench methods
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.config import ConfigError, Profile, available_profiles, load_profile
from datasets import DataSourceError


def _list(value: str) -> str:
    return "[" + ",".join(v.strip() for v in value.split(",") if v.strip()) + "]"


# shortcut flag -> (profile key, is a comma-separated list)
SHORTCUTS = {
    "methods": ("unlearning.methods", True),
    "forget_classes": ("unlearning.forget_classes", True),
    "seeds": ("unlearning.seeds", True),
    "steps": ("unlearning.steps", False),
    "device": ("runtime.accelerator", False),
    "logger": ("runtime.logger", False),
    "output_dir": ("runtime.output_dir", False),
    "cache_dir": ("runtime.cache_dir", False),
}


def build_overrides(args: argparse.Namespace) -> list[str]:
    """Shortcut flags as ``key=value`` overrides, validated by the profile parser like any other."""
    out = []
    for flag, (key, is_list) in SHORTCUTS.items():
        value = getattr(args, flag, None)
        if value is not None and value != "":
            out.append(f"{key}={_list(value) if is_list else value}")
    return out + list(args.set or [])


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="unlearnbench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a profile end to end (resumable)")
    run.add_argument("--profile", default="mnist", help=f"one of {available_profiles()} or a .yaml path")
    run.add_argument("--methods", help="comma-separated method names or plugin class paths pkg.module:Class")
    run.add_argument("--forget-classes", help="comma-separated class indices")
    run.add_argument("--seeds", help="comma-separated seeds")
    run.add_argument("--steps", type=int, help="unlearning steps of every fine-tuning method")
    run.add_argument("--device", help="auto | cpu | gpu | cuda | mps")
    run.add_argument("--logger", choices=["wandb", "csv", "none"])
    run.add_argument("--output-dir", help="where results/<profile>/ goes (default: results)")
    run.add_argument("--cache-dir", help="cache of trained models and statistics (default: .cache/unlearnbench)")
    run.add_argument("--pretrained", help="directory of your own class-conditional diffusers UNet2DModel")
    run.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="any profile key, e.g. sampler.steps=100")
    run.add_argument("--force", action="store_true", help="recompute runs that already have a record")
    run.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    board = sub.add_parser("leaderboard", help="rebuild the leaderboard from stored records")
    board.add_argument("--profile", default="mnist")
    board.add_argument("--output-dir", default=None)
    tune = sub.add_parser("tune", help="equal-budget learning-rate grid on a validation forget class")
    tune.add_argument("--profile", default="mnist")
    tune.add_argument("--methods", default="safemax,salun,ga")
    tune.add_argument("--lrs", default="1e-5,3e-5,1e-4,3e-4", help="comma-separated learning rates")
    tune.add_argument("--validation-class", type=int, default=3)
    tune.add_argument("--output-dir", default="results")
    tune.add_argument("--set", nargs="*", metavar="KEY=VALUE")
    sub.add_parser("methods", help="list registered methods (built-ins and plugins)")
    sub.add_parser("profiles", help="list bundled profiles")
    return ap


def _fail(message: str) -> int:
    print(f"unlearnbench: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "profiles":
        print("\n".join(available_profiles()))
        return 0
    if args.command == "methods":
        from methods import available_methods, get_method

        for name in available_methods():
            doc = (get_method(name).__doc__ or "").strip().splitlines()
            print(f"{name:12s} {doc[0] if doc else ''}")
        return 0
    if args.command == "tune":
        from benchmark.tuning import run_grid, tuning_dir, write_summary

        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        lrs = [v.strip() for v in args.lrs.split(",") if v.strip()]
        try:
            grid = run_grid(args.profile, methods, lrs, args.validation_class, args.output_dir, args.set)
        except (ConfigError, ValueError, ImportError) as err:
            return _fail(str(err))
        write_summary(grid, tuning_dir(args.output_dir, args.profile), args.profile, args.validation_class)
        return 0
    if args.command == "leaderboard":
        from benchmark.leaderboard import write_leaderboard
        from benchmark.runner import load_records

        try:
            profile = load_profile(args.profile)
        except ConfigError as err:
            return _fail(str(err))
        out = Path(args.output_dir or profile.runtime.output_dir) / profile.name
        records = load_records(out / "runs")
        if not records:
            return _fail(f"no run records under {out / 'runs'}; run `unlearnbench run --profile {args.profile}`")
        write_leaderboard(out, records)
        return 0
    from benchmark.runner import BenchmarkRunner

    try:
        profile: Profile = load_profile(args.profile, build_overrides(args))
        runner = BenchmarkRunner(profile, force=args.force, pretrained=args.pretrained)
        runner.validate()
    except (ConfigError, KeyError, ValueError, TypeError, ImportError, DataSourceError) as err:
        return _fail(str(err).strip("'\""))
    if args.print_config:
        import yaml

        from benchmark.cache import to_jsonable

        print(yaml.safe_dump(to_jsonable(profile), sort_keys=False))
        return 0
    runner.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
