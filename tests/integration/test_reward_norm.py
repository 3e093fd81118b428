"""reward_norm through Hogwild A3C: both worker processes update the one shared copy of the return
statistics, which the checkpoint keeps; episode returns stay the env's own."""

from __future__ import annotations

import csv

import torch

from a3c import A3C, load


def test_a3c_workers_share_the_return_statistics_and_log_real_returns(tmp_path):
    model = A3C("CartPole-v1", workers=2, seed=0, verbose=0, reward_norm=True, eval_interval=0,
                final_eval_episodes=2, checkpoint_interval=0)
    model.learn(total_steps=4_000, run_dir=tmp_path)
    stats = model.policy.return_normalizer
    # Both workers' returns reached the one shared copy (lock-free: a racing update may be lost).
    assert float(stats.count) > 0.6 * model.num_steps
    assert float(stats.var) > 1.0
    loaded = load(tmp_path / "model.safetensors", verbose=0)
    torch.testing.assert_close(loaded.policy.return_normalizer.var, stats.var)
    with open(tmp_path / "episodes.csv", newline="") as f:
        episodes = list(csv.DictReader(f))
    # CartPole pays 1 per step: a logged return is the episode's length, not a normalised sum.
    assert episodes and all(float(e["episode_return"]) == int(e["episode_length"]) for e in episodes)
