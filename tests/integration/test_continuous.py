"""Continuous control: MuJoCo's InvertedPendulum-v5 through the whole pipeline with observation
normalisation, whose statistics are shared by the A3C workers and saved with the weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("mujoco")

from a3c import A3C, load  # noqa: E402


def test_inverted_pendulum_trains_with_shared_obs_statistics(tmp_path):
    model = A3C("InvertedPendulum-v5", workers=2, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=2, checkpoint_interval=0)
    assert model.config.preset == "mujoco" and model.config.obs_norm
    model.learn(total_steps=3_000, run_dir=tmp_path)
    stats = model.policy.normalizer
    # Both workers' rollouts reached the one shared copy (lock-free: a racing update may be lost).
    assert float(stats.count) > 0.6 * model.num_steps
    assert stats.var.min() > 0 and not torch.equal(stats.mean, torch.zeros_like(stats.mean))
    loaded = load(tmp_path / "model.safetensors", verbose=0)
    torch.testing.assert_close(loaded.policy.normalizer.mean, stats.mean)
    obs = np.array([0.01, -0.02, 0.1, 0.0], dtype=np.float32)
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_allclose(a1, a2)
    assert model.last_result.final_eval is not None
