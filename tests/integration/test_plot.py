"""`a3c plot`: learning curves of run directories into a PNG."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from a3c.cli import main
from a3c.run.metrics import EPISODE_COLUMNS
from a3c.run.plotting import default_window, read_episodes, smooth


def _run_dir(path, n=200, seed=0):
    rng = np.random.default_rng(seed)
    path.mkdir()
    with open(path / "episodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EPISODE_COLUMNS)
        for i in range(n):
            w.writerow([f"{0.05 * i:.3f}", 100 * i, i % 2, min(500.0, 10 + 2.5 * i + rng.normal(0, 5)), 20])
    return path


def test_plot_writes_a_png_for_several_runs(tmp_path, capsys):
    a, b = _run_dir(tmp_path / "a3c-run"), _run_dir(tmp_path / "a2c-run", seed=1)
    out = tmp_path / "plots" / "curves.png"
    assert main(["plot", str(a), str(b), "-o", str(out), "--title", "CartPole-v1"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out) in capsys.readouterr().out


def test_plot_of_a_directory_without_episodes_is_one_line_and_status_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["plot", str(tmp_path / "empty"), "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("a3c: error:") and "episodes.csv" in err and "\n" not in err
    assert not (tmp_path / "x.png").exists()


def test_smoothing_is_a_trailing_mean():
    assert np.allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    assert np.allclose(smooth(np.array([1.0, 3.0]), 1), [1.0, 3.0])
    assert default_window(10) == 1 and default_window(100_000) == 100


def test_read_episodes_sorts_by_step(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "episodes.csv").write_text(
        "wall_time,global_step,worker,episode_return,episode_length\n2.0,300,1,30,30\n1.0,100,0,10,10\n")
    curve = read_episodes(run)
    assert curve.steps.tolist() == [100, 300] and curve.returns.tolist() == [10, 30]
    assert curve.label == "run"


@pytest.mark.parametrize("text", ["", "wall_time,global_step,worker,episode_return,episode_length\n",
                                  "a,b\n1,2\n"])
def test_unusable_episode_logs_are_plot_errors(tmp_path, text):
    from a3c.errors import PlotError

    (tmp_path / "episodes.csv").write_text(text)
    with pytest.raises(PlotError):
        read_episodes(tmp_path)
