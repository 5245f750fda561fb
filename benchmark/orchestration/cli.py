"""``unlearnbench``: run a profile, rebuild its leaderboard, list methods and profiles.

Examples::

    unlearnbench run --profile mnist
    unlearnbench run --profile smoke --methods safemax,ga --forget-classes 0,3 --seeds 0,1 --steps 100
    unlearnbench run --profile mnist --set unlearning.method_args='{safemax: {lr: 3e-5}}' --force
    unlearnbench run --profile mnist --methods my_pkg.my_module:MyMethod
    unlearnbench list --profile mnist              # the planned runs: key, row, forget class, seed, status
    unlearnbench run --profile mnist --key KEY     # exactly one run of the plan (a cluster job)
    unlearnbench launch --profile mnist --executor local --workers 2   # one job per pending run (submitit)
    unlearnbench launch --profile cifar10 --executor slurm --partition gpu --workers 32
    unlearnbench leaderboard --profile mnist     # yours beside the committed reference
    unlearnbench report --profile mnist          # the same as a web page (report.html), path printed
    unlearnbench publish --profile mnist         # local results -> results/reference/mnist (maintainers)
    unlearnbench methods
    unlearnbench yardstick --profile mnist --force  # retrain the committed evaluation networks (maintainers)
    unlearnbench study --spec capacity             # issue 10's capacity study (resumable)
    unlearnbench original --profile mnist --set pretrain.steps=8000 --commit mnist16-8k   # train once, commit
    unlearnbench continual --profile mnist --requests 0,1,2   # forget 0, then 1, then 2; scored after each
"""

from __future__ import annotations

import argparse
import json
import sys

from unlearnbench.foundation.config import available_profiles  # light: no torch is imported for --help


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
    return out + list(getattr(args, "set", None) or [])


def plan_options(cmd: argparse.ArgumentParser) -> None:
    """The options that define a plan (and so its run keys): ``run``, ``list`` and ``launch`` take the same ones."""
    cmd.add_argument("--profile", default="mnist", help=f"one of {available_profiles()} or a .yaml path")
    cmd.add_argument("--methods", help="comma-separated method names, variant names or plugin class paths")
    cmd.add_argument("--forget-classes", help="comma-separated class indices")
    cmd.add_argument("--seeds", help="comma-separated seeds")
    cmd.add_argument("--steps", type=int, help="unlearning steps of every fine-tuning method")
    cmd.add_argument("--device", help="auto | cpu | gpu | cuda | mps")
    cmd.add_argument("--logger", choices=["wandb", "csv", "none"])
    cmd.add_argument("--output-dir", help="where <profile>/ results go (default: results/local, git-ignored)")
    cmd.add_argument("--cache-dir", help="cache of trained models and statistics (default: .cache/unlearnbench)")
    cmd.add_argument("--pretrained", help="directory of your own class-conditional diffusers UNet2DModel")
    cmd.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="any profile key, e.g. sampler.steps=100")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="unlearnbench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debug", action="store_true", help="show Python tracebacks instead of one-line errors")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a profile end to end (resumable), or one run of it (--key)")
    plan_options(run)
    run.add_argument("--key", action="append", metavar="KEY",
                     help="run only the run with this key (see `unlearnbench list`), then nothing else; repeatable")
    run.add_argument("--force", action="store_true", help="recompute runs that already have a record")
    run.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    listing = sub.add_parser("list", help="the planned runs of a profile: key, row label, forget class, seed, status "
                                          "(done / failed / pending)")
    plan_options(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    launch = sub.add_parser("launch", help="one job per pending run on a cluster (slurm) or in local processes "
                                           "(submitit); then the leaderboard")
    plan_options(launch)
    launch.add_argument("--executor", choices=["local", "slurm"], required=True)
    launch.add_argument("--workers", type=int, default=None,
                        help="jobs at once (local: default 1; slurm: the array's parallelism, default unlimited)")
    launch.add_argument("--partition", help="slurm partition")
    launch.add_argument("--timeout-min", type=int, default=24 * 60, help="time limit of one job in minutes")
    launch.add_argument("--gpus-per-job", type=int, default=None, help="slurm GPUs per job (default 1; local: 0)")
    launch.add_argument("--cpus-per-job", type=int, default=None,
                        help="slurm CPUs per job (also the job's runtime.num_threads unless you set it)")
    launch.add_argument("--force", action="store_true", help="recompute runs that already have a record")
    for name, text in (("leaderboard", "rebuild the leaderboard of the current plan from stored records, with the "
                                       "committed reference beside it"),
                       ("publish", "copy the current plan's local results into results/reference/<profile>/ "
                                   "(the committed reference)"),
                       ("report", "write the web page of the profile's results (report.html: sortable tables, "
                                  "sample grids, the committed reference beside them) and print its path")):
        command = sub.add_parser(name, help=text)
        plan_options(command)
        if name == "publish":
            command.add_argument("--from", dest="source", metavar="REFERENCE_DIR",
                                 help="take the plan's records from another published reference made with the same "
                                      "protocol (no run recomputed)")
    tune = sub.add_parser("tune", help="equal-budget learning-rate grid on a validation forget class")
    tune.add_argument("--profile", default="mnist")
    tune.add_argument("--methods", default="safemax,salun,ga")
    tune.add_argument("--lrs", default="1e-5,3e-5,1e-4,3e-4", help="comma-separated learning rates")
    tune.add_argument("--validation-class", type=int, default=3)
    tune.add_argument("--output-dir", default="results/local")
    tune.add_argument("--set", nargs="*", metavar="KEY=VALUE")
    yard = sub.add_parser("yardstick", help="train a dataset's fixed evaluation networks once (deterministic) into "
                                            "benchmark/yardsticks/<data>-<size>px, or --output DIR")
    yard.add_argument("--profile", default="mnist")
    yard.add_argument("--output", default=None, help="folder to write (default: the committed one of the data)")
    yard.add_argument("--force", action="store_true", help="replace an existing yardstick folder")
    yard.add_argument("--set", nargs="*", metavar="KEY=VALUE")
    original = sub.add_parser("original", help="train (or load from the cache) the profile's original model; with "
                                               "--commit NAME copy it to benchmark/originals/NAME, from where "
                                               "pretrain.committed=NAME loads it instead of training it")
    original.add_argument("--profile", default="mnist")
    original.add_argument("--commit", metavar="NAME", help="folder name under benchmark/originals/")
    original.add_argument("--cache-dir", help="cache of trained models (default: .cache/unlearnbench); a training "
                                              "resumes from its checkpoint there")
    original.add_argument("--set", nargs="*", metavar="KEY=VALUE")
    signal = sub.add_parser("class-signal", help="how much the class label changes the original's prediction at each "
                                                 "timestep (issue 10: where in t is the class?)")
    signal.add_argument("--profile", default="mnist")
    signal.add_argument("--images-per-class", type=int, default=32, help="real test images per class")
    signal.add_argument("--output", default=None, help="folder (default: results/local/<profile>-class-signal)")
    signal.add_argument("--pretrained", default=None)
    signal.add_argument("--set", nargs="*", metavar="KEY=VALUE")
    study = sub.add_parser("study", help="a profile at several model sizes with fixed method arms (resumable), e.g. "
                                         "issue 10's capacity study: --spec capacity")
    study.add_argument("--spec", default="capacity", help="a study in benchmark/studies/ or a .yaml path")
    study.add_argument("--sizes", help="comma-separated size labels to run (default: all)")
    study.add_argument("--summary-only", action="store_true", help="redraw the summary from stored records")
    study.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="override a spec key, e.g. output_dir=DIR")
    continual = sub.add_parser("continual", help="every method of the plan applied request after request (forget A, "
                                                 "then B, ...), scored after each request (resumable)")
    plan_options(continual)
    continual.add_argument("--requests", required=True, help="comma-separated classes, forgotten in this order")
    continual.add_argument("--force", action="store_true", help="recompute steps that already have a record")
    verify = sub.add_parser("verify", help="rerun a cheap subset of the committed reference (the original and the two "
                                           "fastest methods on one forget class) and compare; stamps it on success")
    verify.add_argument("--profile", default="mnist")
    verify.add_argument("--methods", help="comma-separated reference rows to rerun (default: the two fastest)")
    verify.add_argument("--forget-class", type=int, help="default: the reference's first forget class")
    verify.add_argument("--output-dir", help="where the reruns go (default: results/local; under verify/<profile>)")
    verify.add_argument("--cache-dir", help="cache of trained models and statistics (default: .cache/unlearnbench)")
    verify.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="any profile key")
    sub.add_parser("methods", help="list registered methods (built-ins and plugins)")
    sub.add_parser("profiles", help="list bundled profiles")
    return ap


def _fail(message: str) -> int:
    print(f"unlearnbench: error: {message}", file=sys.stderr)
    return 2


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).strip("'\"").split())
    return text if text else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return _fail("interrupted; finished runs are saved, rerun the same command to resume")
    except Exception as err:  # one clear line; --debug shows the traceback
        if args.debug:
            raise
        from unlearnbench.foundation.config import ConfigError

        expected = isinstance(err, ConfigError | ValueError | OSError | RuntimeError | ImportError | KeyError)
        hint = "" if expected else f" ({type(err).__name__}; rerun with --debug for the traceback)"
        return _fail(_one_line(err) + hint)


def _runner(args: argparse.Namespace):
    from unlearnbench.orchestration.runner import make_runner

    return make_runner(args.profile, build_overrides(args), args.pretrained, force=getattr(args, "force", False))


def _list_runs(args: argparse.Namespace) -> int:
    runner = _runner(args)
    _, specs = runner.validate()
    rows = runner.listing(specs)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        width = max([len(r["label"]) for r in rows] + [5])
        print(f"{'key':16s}  {'label':{width}s}  forget_class  seed  status")
        for r in rows:
            print(f"{r['key']:16s}  {r['label']:{width}s}  {r['forget_class']:12d}  {r['seed']:4d}  {r['status']}")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "failed", "pending")}
    print(f"{len(rows)} runs: {counts['done']} done, {counts['failed']} failed, {counts['pending']} pending; "
          f"{runner.machine_text()}; results in {runner.out_dir}",
          file=sys.stderr)
    return 0


def _launch(args: argparse.Namespace) -> int:
    from unlearnbench.orchestration.launcher import LaunchOptions, launch

    options = LaunchOptions(executor=args.executor, workers=args.workers, partition=args.partition,
                            timeout_min=args.timeout_min, gpus_per_job=args.gpus_per_job,
                            cpus_per_job=args.cpus_per_job)
    return launch(args.profile, build_overrides(args), options, pretrained=args.pretrained, force=args.force)


def _verify(args: argparse.Namespace) -> int:
    from unlearnbench.orchestration.verify import print_comparisons, verify

    overrides = [f"runtime.{k}={v}" for k, v in (("output_dir", args.output_dir), ("cache_dir", args.cache_dir)) if v]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    return 0 if print_comparisons(*verify(args.profile, [*overrides, *(args.set or [])], methods,
                                          args.forget_class)) else 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "profiles":
        print("\n".join(available_profiles()))
        return 0
    if args.command == "methods":
        from unlearnbench.methods.registry import available_methods, method_summary

        for name in available_methods():
            print(f"{name:12s} {method_summary(name)}")
        return 0
    if args.command == "verify":
        return _verify(args)
    if args.command == "tune":
        from unlearnbench.orchestration.tuning import run_grid, tuning_dir, write_summary

        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        lrs = [v.strip() for v in args.lrs.split(",") if v.strip()]
        grid = run_grid(args.profile, methods, lrs, args.validation_class, args.output_dir, args.set)
        write_summary(grid, tuning_dir(args.output_dir, args.profile), args.profile, args.validation_class)
        return 0
    if args.command == "yardstick":
        from unlearnbench.foundation.config import load_profile
        from unlearnbench.foundation.trainer import serial_stage
        from unlearnbench.foundation.yardstick import train_yardstick

        profile = load_profile(args.profile, list(args.set or []))
        command = _command_line("yardstick", args)
        with serial_stage(profile.runtime):  # trained alone: runtime.workers does not apply
            yardstick = train_yardstick(profile, args.output, overwrite=args.force, command=command)
        m = yardstick.card["metrics"]
        print(f"yardstick {yardstick.fingerprint} written to {yardstick.directory}: classifier "
              f"{m['classifier_accuracy']:.2%}, reader {m['reader_accuracy']:.2%} clean / "
              f"{m['reader_accuracy_sigma0.5']:.2%} at sigma 0.5, pure noise unrecognisable "
              f"{m['reader_unrecognisable_gaussian_noise']:.2%} ({yardstick.card['train_seconds']} s)")
        return 0
    if args.command == "class-signal":
        return _class_signal(args)
    if args.command == "original":
        return _original(args)
    if args.command == "study":
        from unlearnbench.orchestration.study import load_study, run_study

        spec = load_study(args.spec, list(args.set or []))
        sizes = [s.strip() for s in args.sizes.split(",") if s.strip()] if args.sizes else None
        table = run_study(spec, sizes, summary_only=args.summary_only)
        print(f"{len(table)} records; summary in {spec.output_dir}/summary.md")
        return 0
    if args.command in ("leaderboard", "publish", "report"):
        from unlearnbench.orchestration.runner import publish, rebuild_leaderboard

        runner = _runner(args)
        if args.command == "leaderboard":
            return rebuild_leaderboard(runner)
        if args.command == "report":
            return _report(runner)
        return publish(runner, source=args.source)
    if args.command == "list":
        return _list_runs(args)
    if args.command == "continual":
        from unlearnbench.orchestration.continual import ContinualRunner

        if args.forget_classes:
            return _fail("continual takes --requests (the order matters), not --forget-classes")
        requests = [int(c) for c in args.requests.split(",") if c.strip()]
        table = ContinualRunner(_runner(args), requests).run()
        print(f"{len(table)} continual rows")
        return 0
    if args.command == "launch":
        return _launch(args)
    runner = _runner(args)
    _, specs = runner.validate()
    if args.key:
        runner.select(specs, args.key)  # an unknown key stops here, in one line
    if args.print_config:
        import yaml

        from unlearnbench.foundation.cache import to_jsonable

        print(yaml.safe_dump(to_jsonable(runner.profile), sort_keys=False))
        return 0
    runner.run_keys(args.key)
    return 0


def _report(runner) -> int:
    """``unlearnbench report``: the page of the profile's results as they are (no run), the reference beside."""
    from unlearnbench.orchestration.reference import REFERENCE_ROOT
    from unlearnbench.orchestration.report_page import write_report_page

    if not (runner.out_dir / "leaderboard.json").is_file():
        return _fail(f"no leaderboard in {runner.out_dir}: run `unlearnbench run --profile {runner.profile.name}` "
                     "(or `unlearnbench leaderboard`) first")
    print(write_report_page(runner.out_dir, REFERENCE_ROOT / runner.profile.name))
    return 0


def _original(args: argparse.Namespace) -> int:
    """``unlearnbench original``: the profile's original, trained alone (all threads), optionally committed. Without
    ``--commit``, a committed original the profile names (``pretrain.committed``, its recipe the profile's) is what
    every run loads, so it is reported and nothing is trained."""
    from unlearnbench.foundation.config import load_profile
    from unlearnbench.foundation.pretraining import commit_original, committed_original, train_or_load_diffusion
    from unlearnbench.foundation.trainer import serial_stage

    cache = [f"runtime.cache_dir={args.cache_dir}"] if args.cache_dir else []
    profile = load_profile(args.profile, [*cache, *(args.set or [])])
    named = profile.pretrain.committed
    committed = committed_original(profile) if named and not args.commit else None
    if committed is not None:
        weights = json.loads((committed / "metadata.json").read_text())["weights"]
        print(f"original {weights} is committed in {committed} (pretrain.committed={named}): runs load it, "
              "nothing to train")
        return 0
    if named and not args.commit:
        print(f"pretrain.committed={named} records another recipe than this profile's: the original is trained")
    with serial_stage(profile.runtime):  # trained alone: runtime.workers does not apply
        if args.commit:
            directory, meta = commit_original(profile, args.commit)
        else:
            _, meta, directory = train_or_load_diffusion(profile)
    how = "loaded from the cache" if meta.get("cache_hit") else f"trained in {meta['train_seconds']:.0f} s"
    print(f"original {meta['weights']} ({how}, {meta['steps']} steps) in {directory}")
    if args.commit:
        print(f"load it with --set pretrain.committed={args.commit} (used while the profile's recipe is its own)")
    return 0


def _command_line(subcommand: str, args: argparse.Namespace) -> str:
    """The command that remakes what ``args`` made: ``unlearnbench <subcommand> --profile <p> [--set …]`` (recorded
    in what it writes, e.g. a yardstick's card)."""
    return " ".join([f"unlearnbench {subcommand} --profile", args.profile, *(["--set", *args.set] if args.set else [])])


def _class_signal(args: argparse.Namespace) -> int:
    from unlearnbench.foundation.config import load_profile
    from unlearnbench.metrics.class_signal import measure_original

    profile = load_profile(args.profile, list(args.set or []))
    command = _command_line("class-signal", args)
    out = args.output or f"{profile.runtime.output_dir}/{profile.name}-class-signal"
    frame = measure_original(profile, args.images_per_class, out, args.pretrained, command)
    print(frame.groupby("t")[["d_null", "d_swap"]].mean().to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"written to {out}/class_signal.{{csv,json,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
