"""The LSTM agent remembers: on a3c/CueMemory-v0 it learns to recall a cue seen 9 steps earlier
(mean return near 1), where the same agent without the LSTM cannot do better than chance (near 0).

A2C with 16 envs and T = one episode (10 steps), so every rollout holds a whole episode and the
gradient flows from the judged answer back to the cue. About 5 s per run on the 2-core machine.
And A3C as `a3c train a3c/CueMemory-v0 --core lstm` runs it: the preset chosen for the env, no
option but the core.
"""

from __future__ import annotations

import pytest

from a3c import A2C, A3C

BUDGET = 80_000  # env steps
HPARAMS = dict(n_envs=16, n_steps=10, core_size=32, hidden_sizes=(32,), shared_torso=True, lr=3e-3,
               optimizer="adam", entropy_coef=0.01, gamma=0.99, eval_interval=0, final_eval_episodes=0,
               checkpoint_interval=0)


def train(tmp_path, core: str, seed: int) -> float:
    model = A2C("a3c/CueMemory-v0", core=core, seed=seed, verbose=0, **HPARAMS)
    model.learn(total_steps=BUDGET, run_dir=tmp_path)
    return model.evaluate(200, deterministic=True, seed=seed).mean_return


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 2])
def test_lstm_agent_recalls_the_cue(tmp_path, seed):
    assert train(tmp_path, "lstm", seed) >= 0.9


@pytest.mark.slow
def test_feed_forward_agent_cannot(tmp_path):
    # Greedy, it answers the same at every last step: right for one cue, wrong for the other.
    assert abs(train(tmp_path, "none", 0)) <= 0.3


@pytest.mark.slow
def test_plain_lstm_option_recalls_the_cue(tmp_path):
    # The default A3C settings with core="lstm" alone, on the budget above. Measured on 12 seeds
    # (benchmarks/results/memory-lstm-a3c.md): every one held 1.0 at its first evaluation, 50k steps.
    model = A3C("a3c/CueMemory-v0", core="lstm", seed=1, verbose=0)
    model.learn(total_steps=BUDGET, run_dir=tmp_path)
    assert model.last_result.final_eval.mean_return >= 0.9, model.last_result
