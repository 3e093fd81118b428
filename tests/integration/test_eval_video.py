"""`a3c eval CHECKPOINT --video DIR` records every episode; --render without a screen says so."""

from __future__ import annotations

import pytest

from a3c import A2C


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    model = A2C("CartPole-v1", n_envs=2, seed=0, verbose=0, eval_interval=0, final_eval_episodes=0,
                checkpoint_interval=0)
    model.learn(total_steps=500, run_dir=run_dir)
    return run_dir / "model.safetensors"


def test_video_records_each_episode(a3c_cli, checkpoint, tmp_path):
    pytest.importorskip("moviepy")
    out = a3c_cli("eval", checkpoint, "--episodes", "2", "--video", tmp_path / "videos")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "videos").glob("*.mp4")) == \
        ["eval-episode-0.mp4", "eval-episode-1.mp4"]


def test_render_without_a_screen_is_one_clear_line(a3c_cli, checkpoint, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = a3c_cli("eval", checkpoint, "--render")
    assert out.returncode == 2
    assert "needs a screen" in out.stderr and "--video" in out.stderr
    assert "Traceback" not in out.stderr


def test_render_shows_episodes_through_the_envs_own_window(a3c_cli, checkpoint, monkeypatch):
    # No screen here: pygame's dummy video driver stands in for one, so the env's human renderer
    # opens its window and draws every step, as it would on a desktop.
    pytest.importorskip("pygame")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    out = a3c_cli("eval", checkpoint, "--episodes", "1", "--render")
    assert out.returncode == 0, out.stderr
    assert "over 1 greedy episode" in out.stdout
