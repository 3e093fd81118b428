"""Learning curves from run directories: training return against env steps and against wall time."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a3c.errors import PlotError


@dataclass
class Curve:
    """One run's finished episodes in the order they ended."""

    label: str
    steps: np.ndarray
    wall_time: np.ndarray
    returns: np.ndarray


def read_episodes(run_dir: str | os.PathLike, label: str | None = None) -> Curve:
    """episodes.csv of a run directory (or the file itself), sorted by env step."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / "episodes.csv"
    if not path.is_file():
        raise PlotError(f"{run_dir}: no episodes.csv (is it a run directory?)")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        data = np.array([(float(r["global_step"]), float(r["wall_time"]), float(r["episode_return"]))
                         for r in rows], dtype=np.float64).reshape(-1, 3)
    except (KeyError, ValueError, TypeError) as exc:
        raise PlotError(f"{path}: not an episode log of this library ({exc})") from None
    if len(data) == 0:
        raise PlotError(f"{path}: no finished episodes to plot")
    data = data[np.argsort(data[:, 0], kind="stable")]
    name = label or (path.parent.name if path.name == "episodes.csv" else path.stem)
    return Curve(name, data[:, 0], data[:, 1], data[:, 2])


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average; the first points average what there is so far."""
    if window <= 1 or len(values) < 2:
        return values.astype(np.float64)
    sums = np.cumsum(np.insert(values.astype(np.float64), 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (sums[idx] - sums[lo]) / (idx - lo)


def default_window(n_episodes: int) -> int:
    """About 2% of the episodes, at least 1 and at most 100: smooth but not flattened."""
    return max(1, min(100, math.ceil(n_episodes / 50)))


def plot_runs(run_dirs: list[str | os.PathLike], out: str | os.PathLike, window: int | None = None,
              title: str | None = None, labels: list[str] | None = None) -> Path:
    """Draw one line per run: smoothed return against env steps (left) and wall time (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    if labels is not None and len(labels) != len(run_dirs):
        raise PlotError(f"{len(labels)} labels for {len(run_dirs)} runs")
    curves = [read_episodes(d, labels[i] if labels else None) for i, d in enumerate(run_dirs)]
    fig, (ax_steps, ax_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True, layout="constrained")
    for i, curve in enumerate(curves):
        w = window or default_window(len(curve.returns))
        y = smooth(curve.returns, w)
        color = f"C{i % 10}"
        label = f"{curve.label} ({len(curve.returns)} episodes, smoothed over {w})"
        for ax, x in ((ax_steps, curve.steps), (ax_time, curve.wall_time)):
            ax.plot(x, curve.returns, color=color, alpha=0.12, linewidth=0.6)
            ax.plot(x, y, color=color, linewidth=1.8, label=label if ax is ax_steps else None)
    ax_steps.set_xlabel("env steps")
    ax_steps.xaxis.set_major_formatter(EngFormatter())
    ax_steps.set_ylabel("training episode return")
    ax_time.set_xlabel("wall time (s)")
    for ax in (ax_steps, ax_time):
        ax.grid(alpha=0.3)
    ax_steps.legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
