"""The `a3c` command: train, eval and plot. Training options are generated from the Config dataclass."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import MISSING, fields
from typing import Any, NoReturn

from a3c.config import Config

_SKIP = {"env_id"}  # positional


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2, no usage wall."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"a3c: error: {message}\n")


def _none_or(parse):
    def convert(text: str) -> Any:
        return None if text.lower() == "none" else parse(text)
    convert.__name__ = parse.__name__
    return convert


def _str_tuple(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.replace(",", " ").split())


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 64,64, got {text!r}") from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"key\": 1}}', got {text!r}") \
            from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"key\": 1}}', got {text!r}")
    return value


_json_object.__name__ = "JSON object"

_PARSERS = {
    "int": int, "float": float, "str": str,
    "float | None": _none_or(float), "str | None": _none_or(str), "tuple[int, ...]": _int_tuple,
    "dict[str, Any]": _json_object, "tuple[str, ...]": _str_tuple,
}


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    for f in fields(Config):
        if f.name in _SKIP:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if "default" not in help_text:
            default = (f.default if f.default is not MISSING else
                       f.default_factory() if f.default_factory is not MISSING else None)
            help_text += f" (default: the preset's, else {default})"
        if f.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        elif "choices" in f.metadata:
            parser.add_argument(flag, choices=f.metadata["choices"], default=argparse.SUPPRESS,
                                help=help_text)
        else:
            # A preset is always named: "none" is no preset's name, so it is not read as None.
            parse = str if f.name == "preset" else _PARSERS[f.type]
            parser.add_argument(flag, type=parse, default=argparse.SUPPRESS,
                                help=help_text, metavar=f.name.upper())


TRUST_HELP = ("allow the checkpoint to import the modules it names (its env's module, env function "
              "or wrappers, its network's torso class): only for files you trust, as importing a module "
              "runs its code")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="a3c", description="Asynchronous (A3C) and synchronous (A2C) advantage "
                     "actor-critic on Gymnasium.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = sub.add_parser(
        "train", help="train an agent; ends with a checkpoint and an evaluation",
        description="Train an agent. Ctrl-C or SIGTERM stops it cleanly: the workers stop, a final "
        "checkpoint is saved, and the exit status is 130 (SIGINT) or 143 (SIGTERM); a second Ctrl-C "
        "exits at once without saving. Errors in the options exit with status 2, a failed run with 1.")
    train.add_argument("env_id", nargs="?", default=None,
                       help="Gymnasium id, e.g. CartPole-v1, or module:EnvName-v0 (or the config file's)")
    train.add_argument("--quiet", action="store_true", help="no progress display")
    train.add_argument("--config", metavar="FILE", default=None,
                       help="options from a JSON or TOML file whose keys are the options below "
                       "(total_steps, lr, ...); options on the command line win")
    train.add_argument("--trust-code", action="store_true",
                       help="with --resume: " + TRUST_HELP)
    train.add_argument("--resume", metavar="RUN_DIR", default=None,
                       help="continue the run in RUN_DIR from its newest checkpoint, to its own "
                       "total steps (or --total-steps more); only options about how long and how it "
                       "runs may change")
    _add_config_options(train)
    ev = sub.add_parser("eval", help="evaluate a checkpoint")
    ev.add_argument("checkpoint", help="a .safetensors checkpoint, or a run directory")
    ev.add_argument("--episodes", type=int, default=10, help="episodes to run (default: 10)")
    ev.add_argument("--stochastic", action="store_true", help="sample actions instead of the mode")
    ev.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    ev.add_argument("--json", action="store_true", help="print one JSON line")
    ev.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    ev.add_argument("--video", metavar="DIR", default=None,
                    help='record every episode to an MP4 file in DIR (pip install "a3c[video]")')
    ev.add_argument("--render", action="store_true", help="show the episodes in a window (needs a screen)")
    ex = sub.add_parser(
        "export", help="write a checkpoint's greedy policy to an ONNX or TorchScript file",
        description="Write the greedy policy of a checkpoint to one file for deployment: the observation "
        "as the env gives it in (one input per part of a Dict or Tuple observation), the env's action "
        "out; a recurrent policy's LSTM state in and out beside them (docs/export.md).")
    ex.add_argument("checkpoint", help="a .safetensors checkpoint, or a run directory")
    ex.add_argument("--format", choices=("onnx", "torchscript"), default="onnx",
                    help="onnx (onnxruntime and others; pip install \"a3c[export]\") or torchscript "
                    "(torch.jit.load) (default: onnx)")
    ex.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    ex.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    plot = sub.add_parser("plot", help="draw learning curves of one or more runs into a PNG")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (episodes.csv)")
    plot.add_argument("-o", "--output", default="learning_curves.png",
                      help="PNG to write (default: learning_curves.png)")
    plot.add_argument("--smooth", type=int, default=None, metavar="EPISODES",
                      help="moving-average window in episodes (default: about 2%% of a run's episodes)")
    plot.add_argument("--title", default=None, help="figure title")
    plot.add_argument("--labels", nargs="+", default=None, help="one legend label per run")
    _add_sweep_parser(sub)
    return parser


_NOT_CONFIG = ("command", "env_id", "quiet", "preset", "config", "resume", "trust_code")


def _config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Config fields typed on the command line (argparse leaves out the ones not given)."""
    return {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG}


def build_model(args: argparse.Namespace, config: Config | None = None) -> Any:
    """The model `a3c train ARGS` trains, every option validated; no process is started yet.

    config: new_run_config(args), when the caller has it already (a new run only).
    """
    if args.resume is not None:
        return _resumed_model(args)
    from a3c.api import ALGORITHMS

    config = config if config is not None else new_run_config(args)
    return ALGORITHMS[config.algo](config.env_id, config=config, verbose=0 if args.quiet else 1)


def new_run_config(args: argparse.Namespace) -> Config:
    """The validated config of a new run, without importing torch (which takes seconds): a bad value
    is reported at once, and the workers' start-up can follow what the config says.

    Precedence: Config's defaults < the preset < the config file < the command line.
    """
    from a3c.config import ALGOS, read_config_file
    from a3c.errors import ConfigError
    from a3c.presets import build_config

    if args.trust_code:
        raise ConfigError("--trust-code is for --resume: a new run imports what its command line names")
    values = read_config_file(args.config) if args.config is not None else {}
    env_id = args.env_id if args.env_id is not None else values.get("env_id")
    if env_id is None:
        raise ConfigError("name an env id (e.g. a3c train CartPole-v1), or env_id in --config FILE")
    preset = getattr(args, "preset", None)
    preset = preset if preset is not None else values.get("preset")
    values = {k: v for k, v in values.items() if k not in ("env_id", "preset")}
    values.update(_config_options(args))
    algo = values.setdefault("algo", "a3c")
    if algo not in ALGOS:
        raise ConfigError(f"unknown algo {algo!r}; choose from {', '.join(ALGOS)}")
    return build_config(env_id, preset, **values)


def _resumed_model(args: argparse.Namespace) -> Any:
    """The model of `a3c train --resume RUN [ARGS]`: the checkpoint's config with ARGS over it."""
    from a3c.api import resume
    from a3c.errors import ConfigError

    if args.config is not None:
        raise ConfigError("--config and --resume: a resumed run keeps its checkpoint's config")
    options = {k: v for k, v in _config_options(args).items() if k != "algo"}
    model = resume(args.resume, verbose=0 if args.quiet else 1, trust_code=args.trust_code, **options)
    cfg = model.config
    given_vs_stored = (("env id", args.env_id, cfg.env_id), ("algo", getattr(args, "algo", None), cfg.algo),
                       ("preset", getattr(args, "preset", None), cfg.preset))
    for name, given, stored in given_vs_stored:
        if given is not None and given != stored:
            raise ConfigError(f"{args.resume} holds a run of {name} {stored}, not {given}")
    model.steps_left()  # a run that already reached its end needs --total-steps
    return model


def _train(args: argparse.Namespace) -> int:
    config = None
    if args.resume is None:
        config = new_run_config(args)
        if config.algo == "a3c" and config.backend == "local":
            from a3c.drivers.processes import prestart_workers

            prestart_workers()  # the workers' imports run while this process imports torch
        elif config.backend == "ray" and config.ray_address is None:
            from a3c.config import usable_cores

            _start_ray_while_importing(max(usable_cores(), config.workers))
    model = build_model(args, config)
    cfg = model.config
    algo = cfg.algo
    if cfg.backend == "ray":
        from a3c.drivers.ray import require_ray

        require_ray()  # before anything is printed: one line saying what to install
    how = (f"{cfg.n_envs} {cfg.vec_env} envs on {model.device}" if algo == "a2c"
           else f"{cfg.resolved_workers()} workers" + (" on Ray" if cfg.backend == "ray" else ""))
    start = f"resuming {args.resume} at step {model.num_steps:,}, " if args.resume else ""
    print(f"a3c: {start}training {cfg.env_id} with {algo.upper()}, {how}, preset {cfg.preset}, "
          f"{'up to' if not args.resume else 'for'} {model.steps_left():,} steps"
          + (f", target return {cfg.target_return:g}" if cfg.target_return is not None else ""),
          file=sys.stderr)
    model.learn()
    r = model.last_result
    assert r is not None
    print(f"stopped: {r.stop_reason} after {r.steps:,} steps in {r.elapsed:.1f} s "
          f"({r.steps / max(r.elapsed, 1e-9):,.0f} steps/s); staleness mean {r.staleness_mean:.2f}, "
          f"max {r.staleness_max}")
    if r.final_eval is not None:
        e = r.final_eval
        print(f"final evaluation (greedy, {len(e.returns)} episodes): "
              f"mean return {e.mean_return:.1f} +/- {e.std_return:.1f}")
    print(f"checkpoint: {r.checkpoint}")
    print(f"run directory: {r.run_dir}")
    if r.signal is not None:
        import signal

        name = signal.Signals(r.signal).name
        print(f"a3c: stopped by {name} after {r.steps:,} steps; saved {r.checkpoint}; continue with: "
              f"a3c train --resume {r.run_dir}", file=sys.stderr)
        return 128 + r.signal  # 130 for Ctrl-C, 143 for SIGTERM: the shell's convention
    return 0


def _start_ray_while_importing(cpus: int) -> None:
    """Start the run's local Ray instance now, importing torch and the API in a thread meanwhile:
    Ray's start-up is mostly waiting for its processes, so the imports come nearly free. The run's
    connect() then takes this instance. Without Ray, nothing: the run says what to install."""
    import importlib
    import threading

    imports = threading.Thread(target=importlib.import_module, args=("a3c.api",), daemon=True)
    imports.start()
    try:
        from a3c.drivers.ray.connection import start_local
    except ImportError:
        return
    # Here, not in a thread: Ray's processes die with the thread that started them (PR_SET_PDEATHSIG).
    start_local(cpus, for_the_next_run=True)
    imports.join()


def _eval(args: argparse.Namespace) -> int:
    from a3c.api import load
    from a3c.errors import ConfigError

    if args.episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {args.episodes}")
    # A3C or A2C, as the checkpoint says
    model = load(args.checkpoint, verbose=0, device="cpu", trust_code=args.trust_code)
    result = model.evaluate(args.episodes, deterministic=not args.stochastic, seed=args.seed,
                            video_dir=args.video, render=args.render)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        mode = "stochastic" if args.stochastic else "greedy"
        kwargs = ", ".join(f"{k}={v!r}" for k, v in model.config.env_kwargs.items())
        env = f"{model.config.env_id}({kwargs})" if kwargs else model.config.env_id
        print(f"{env}: mean return {result.mean_return:.2f} +/- "
              f"{result.std_return:.2f} over {len(result.returns)} {mode} episodes "
              f"(min {min(result.returns):.1f}, max {max(result.returns):.1f})")
        if args.video:
            print(f"videos: {args.video}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from a3c.api import load

    model = load(args.checkpoint, verbose=0, device="cpu", trust_code=args.trust_code)
    path = model.export(args.output, args.format)
    policy = "recurrent policy" if model.policy.recurrent else "policy"
    print(f"wrote {path}: the greedy {policy} of {model.config.env_id} after {model.num_steps:,} steps "
          f"({args.format})")
    return 0


def _plot(args: argparse.Namespace) -> int:
    from a3c.errors import ConfigError
    from a3c.run.plotting import plot_runs

    if args.smooth is not None and args.smooth <= 0:
        raise ConfigError(f"--smooth must be positive, got {args.smooth}")
    out = plot_runs(args.run_dirs, args.output, window=args.smooth, title=args.title, labels=args.labels)
    print(f"wrote {out}")
    return 0


# --- a3c sweep: a grid of runs as Ray Tune trials (a3c.run.sweep) ---

def _add_sweep_parser(sub: Any) -> None:
    sweep = sub.add_parser(
        "sweep", help="run a grid of trainings (envs x options x seeds) as Ray Tune trials; one table",
        description="Run every trial of a grid file (envs, seeds, algo, options, grid; JSON or TOML, see "
        "docs/distributed.md) as a Ray Tune trial, each a normal run directory under OUT/trials, and "
        "write OUT/summary.md and OUT/summary.csv: median, interquartile mean and bootstrap intervals "
        "of the final evaluation over the seeds. Run it again to run only the trials not finished. "
        'Needs pip install "a3c[ray]".')
    sweep.add_argument("grid", help="the grid file (.json or .toml)")
    sweep.add_argument("--out", required=True, metavar="DIR", help="where the trials and the table go")
    sweep.add_argument("--ray-address", default=None, metavar="ADDRESS",
                       help="the Ray cluster to run on, 'auto' or HOST:PORT (default: a new local instance)")


def _sweep(args: argparse.Namespace) -> int:
    from pathlib import Path

    from a3c.drivers.ray import require_ray
    from a3c.errors import TrainingError
    from a3c.run.sweep import read_grid, run_sweep

    grid = read_grid(args.grid)
    require_ray()
    _, failures = run_sweep(grid, Path(args.out), args.ray_address,
                            note=lambda text: print(f"a3c: {text}", file=sys.stderr))
    print((Path(args.out) / "summary.md").read_text(), end="")
    if failures:
        raise TrainingError(f"{len(failures)} trial(s) failed; run the sweep again to retry them:\n"
                            + "\n".join(failures))
    return 0


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """The library's own warnings as one line, like its errors; others as Python shows them."""
    from a3c.errors import A3CWarning

    if issubclass(category, A3CWarning):
        print(f"a3c: warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, *args, **kwargs)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    from a3c.errors import A3CError, EnvFactoryError, TrainingError

    warnings.showwarning = _show_warning
    args = build_parser().parse_args(argv)
    try:
        commands = {"train": _train, "eval": _eval, "export": _export, "plot": _plot, "sweep": _sweep}
        return commands[args.command](args)
    except TrainingError as exc:  # the run started and failed: its traceback, if any, is the news
        print(f"a3c: error: {exc}", file=sys.stderr)
        return 1
    except EnvFactoryError as exc:  # the user's own code raised: its traceback is the news
        print(f"a3c: error: {exc}\n{exc.traceback.rstrip()}", file=sys.stderr)
        return 2
    except A3CError as exc:  # bad input: one line
        print(f"a3c: error: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
