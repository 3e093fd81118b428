"""Checkpoints: one safetensors file, tensors for the model and optimizer, JSON metadata in its header.

No pickle anywhere: loading a file never runs code. Writes go to a temporary file that is synced
and renamed into place, so a crash mid-write leaves the previous checkpoint intact; temporary files
that a killed writer left behind are never read and are removed by the next write.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from a3c.config import Config
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.optim import load_optimizer_tensors, make_shared_optimizer, optimizer_tensors
from a3c.drivers.base import ResumeState, RunPosition
from a3c.drivers.processes import is_running
from a3c.envs.state import TENSOR_PREFIX as _RESUME
from a3c.envs.state import LearnerState
from a3c.envs.state import validate as validate_resume
from a3c.errors import CheckpointError, ConfigError

FORMAT = "a3c-checkpoint"
VERSION = 3  # 3: observation parts, MultiDiscrete and MultiBinary actions, head layers, a user's torso
# (2: network specs with obs_shape, torso, core, obs_norm; versions 1 and 2 still load)
_MODEL, _OPTIM = "model/", "optim/"


@dataclass
class Checkpoint:
    spec: NetworkSpec
    config: Config
    counters: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, torch.Tensor]
    resume_meta: dict[str, Any] | None = None  # the learner's RNG and env state (a3c.envs.state)
    resume_tensors: dict[str, torch.Tensor] | None = None
    path: Path | None = None  # the file it was read from
    trust_code: bool = False  # its reader allowed the code it names (a user's torso) to be imported

    def build_network(self) -> ActorCritic:
        net = ActorCritic(self.spec, trust_code=self.trust_code)
        try:
            net.load_state_dict(self.model_state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise CheckpointError(
                f"checkpoint weights do not fit the network it describes: {' '.join(first[:3])}"
            ) from None
        return net

    def position(self) -> RunPosition:
        """Where the run stood at this checkpoint, for a run that resumes from it."""
        counters = self.counters
        steps = int(counters.get("steps", 0))
        return RunPosition(
            steps=steps, updates=int(counters.get("updates", 0)),
            target_steps=int(counters.get("target_steps", steps)),
            wall_time=float(counters.get("wall_time", 0.0)),
            learner=LearnerState.read(self.resume_meta, self.resume_tensors or {}),
            source=str(self.path),
        )


def save_checkpoint(
    path: str | os.PathLike,
    net: ActorCritic,
    config: Config,
    counters: dict[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    resume: ResumeState | None = None,
) -> Path:
    """Write one checkpoint atomically; `resume` is a3c.envs.state.capture's (metadata, tensors)."""
    path = Path(path)
    tensors = {_MODEL + k: v.detach().cpu().clone().contiguous() for k, v in net.state_dict().items()}
    if optimizer is not None:
        tensors.update({_OPTIM + k: v.contiguous() for k, v in optimizer_tensors(optimizer, net).items()})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "spec": net.spec.to_dict(),
        "config": config.to_dict(),
        "counters": counters,
    }
    if resume is not None:
        meta["resume"] = resume[0]
        tensors.update({k: v.contiguous() for k, v in resume[1].items()})
    data = safetensors_bytes(tensors, metadata={"a3c": json.dumps(meta)})
    atomic_write(path, data)
    remove_stale_temporaries(path.parent)
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Temporary file, fsync, rename, fsync of the directory: the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files (.NAME.tmpPID) of writers that died mid-write (their pid no longer runs)."""
    removed = []
    for tmp in directory.glob(".*.tmp[0-9]*"):
        pid = tmp.name.rpartition(".tmp")[2]
        if pid.isdigit() and not is_running(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def prune_checkpoints(directory: Path, keep: int) -> None:
    """Keep the newest `keep` periodic checkpoints (step_*.safetensors) in directory."""
    for old in sorted(directory.glob("step_*.safetensors"))[:-keep]:
        old.unlink(missing_ok=True)


def read_counters(path: Path) -> dict[str, Any] | None:
    """A checkpoint's counters from its header alone, or None if it is not a readable checkpoint."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["a3c"])
        counters = meta["counters"]
        return counters if isinstance(counters, dict) and _count(counters.get("steps", 0)) else None
    except (SafetensorError, OSError, ValueError, KeyError, TypeError):
        return None


def latest_checkpoint(run_dir: str | os.PathLike) -> Path:
    """The checkpoint of a run directory with the most steps: model.safetensors (the end of a run)
    or the newest periodic one (a run that was killed); temporary files are never candidates."""
    root = Path(run_dir)
    if not root.is_dir():
        raise CheckpointError(f"no run directory at {run_dir}")
    candidates = [root / "model.safetensors", *sorted((root / "checkpoints").glob("step_*.safetensors"))]
    candidates = [p for p in candidates if p.is_file()]
    if not candidates:
        raise CheckpointError(f"{run_dir} holds no checkpoint (model.safetensors or "
                              "checkpoints/step_*.safetensors)")
    readable = [(counters["steps"], p == root / "model.safetensors", p)
                for p in candidates if (counters := read_counters(p)) is not None]
    if not readable:
        load_checkpoint(candidates[0])  # raises the error that says what is wrong with it
    return max(readable, key=lambda item: (item[0], item[1]))[2]


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory holding model.safetensors."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.safetensors"
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return p


def load_checkpoint(path: str | os.PathLike, trust_code: bool = False) -> Checkpoint:
    """A checkpoint read and validated, its tensors loaded into the network it describes.

    Nothing the file names is imported here: a network whose torso is a user's class ('module:Class'
    in its header) is built, and its tensors checked against it, only with trust_code=True;
    otherwise its build_network raises UntrustedCodeError. Anything else wrong is a CheckpointError.
    """
    p = resolve_checkpoint_path(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{p} is not a readable safetensors checkpoint: {exc}") from None
    if "a3c" not in header:
        raise CheckpointError(f"{p} is a safetensors file but not an a3c checkpoint")
    try:
        meta = json.loads(header["a3c"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p}: metadata is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not an a3c checkpoint (format {meta.get('format')!r})"
                              if isinstance(meta, dict) else f"{p}: metadata is not an object")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{p}: checkpoint format version {version!r} is newer than this library reads ({VERSION})"
        )
    for key, kind in (("spec", dict), ("config", dict), ("counters", dict)):
        if not isinstance(meta.get(key), kind):
            raise CheckpointError(f"{p}: metadata field {key!r} is missing or malformed")
    try:
        config = Config.from_dict(meta["config"])
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{p}: stored config is invalid: {exc}") from None
    counters = meta["counters"]
    for key in ("steps", "updates", "target_steps"):
        value = counters.get(key, 0)
        if not _count(value):
            raise CheckpointError(f"{p}: counter {key!r} must be a count, got {value!r}")
    wall = counters.get("wall_time", 0.0)
    if not isinstance(wall, int | float) or isinstance(wall, bool) or not 0 <= wall < float("inf"):
        raise CheckpointError(f"{p}: counter 'wall_time' must be seconds, got {wall!r}")
    resume_meta = meta.get("resume")
    resume_tensors = {k: v for k, v in tensors.items() if k.startswith(_RESUME)}
    if resume_meta is not None:
        try:
            validate_resume(resume_meta, resume_tensors)
        except CheckpointError as exc:
            raise CheckpointError(f"{p}: {exc}") from None
    try:
        spec = NetworkSpec.from_dict(meta["spec"])
    except CheckpointError as exc:
        raise CheckpointError(f"{p}: {exc}") from None
    checkpoint = Checkpoint(
        spec=spec,
        config=config,
        counters=counters,
        model_state={k[len(_MODEL):]: v for k, v in tensors.items() if k.startswith(_MODEL)},
        optimizer_state={k[len(_OPTIM):]: v for k, v in tensors.items() if k.startswith(_OPTIM)},
        resume_meta=resume_meta,
        resume_tensors=resume_tensors,
        path=p,
        trust_code=trust_code,
    )
    if spec.user_torso and not trust_code:
        return checkpoint  # its network needs the torso's module: built once the caller trusts it
    _check_fits(p, checkpoint)
    return checkpoint


def _check_fits(p: Path, ckpt: Checkpoint) -> None:
    """Load the tensors into the network and optimizer they describe: what loads here loads anywhere."""
    try:
        net = ckpt.build_network()
        if ckpt.optimizer_state:
            cfg = ckpt.config
            eps = cfg.adam_eps if cfg.optimizer == "adam" else cfg.rms_eps
            optimizer = make_shared_optimizer(cfg.optimizer, net.parameters(), cfg.lr, eps, cfg.rms_alpha)
            load_optimizer_tensors(optimizer, net, ckpt.optimizer_state)
    except CheckpointError as exc:
        raise CheckpointError(f"{p}: {exc}") from None
    except ConfigError as exc:  # a user's torso that does not build (its module, its arguments)
        raise CheckpointError(f"{p}: the network it describes cannot be built: {exc}") from None
    except (TypeError, ValueError, RuntimeError) as exc:  # sizes in the spec that are not sizes
        raise CheckpointError(f"{p}: network description is malformed: {exc}") from None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
