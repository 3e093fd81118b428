"""Each kind of observation and each kind of action is learned within a step budget, with a fixed
seed, on an identity task of its own (tests/toy_envs.py): every step shows a target, the reward says
how well the action named it, 20 steps an episode. The greedy evaluation must reach the target
return, where the untrained network's greedy policy falls short of it.

A2C, bit-reproducible on the CPU, carries the point that a space works; A3C (Hogwild workers) is
shown on a Dict observation and a MultiDiscrete action. Measured on the 2-core machine (seeds 0-2):
the observation tasks reach their target after 520-1,520 steps, MultiBinary actions after
3,000-5,000, Box actions after about 3,000; A3C on the Dict task after 2,700-3,400.
"""

from __future__ import annotations

import pytest
import torch

from a3c import A2C, A3C

pytestmark = pytest.mark.slow

# The tasks are contextual bandits: no discount, some entropy to keep exploring, Adam.
FAST = dict(gamma=0.0, entropy_coef=0.01, optimizer="adam", lr=1e-3, eval_interval=1000, eval_episodes=5,
            final_eval_episodes=20, checkpoint_interval=0)
BUDGET = 10_000


@pytest.fixture(autouse=True)
def one_thread():
    """Batch-1 evaluation on one intra-op thread: on a shared 2-core machine more only wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def learns(model, target: float, budget: int, run_dir) -> None:
    untrained = model.evaluate(episodes=20, seed=1_000_000).mean_return
    assert untrained < target, f"the task is too easy: an untrained network scores {untrained}"
    model.learn(total_steps=budget, target_return=target, run_dir=run_dir)
    result = model.last_result
    assert result.stop_reason == "target_return", f"not learned within {budget} steps: {result}"
    assert result.final_eval.mean_return >= target, result


@pytest.mark.parametrize("env_id, target", [
    ("ToyDiscreteObs-v0", 19.5),  # Discrete(4, start=3): one-hot
    ("ToyMultiDiscreteObs-v0", 19.5),  # the target in two digits: one-hot each
    ("ToyMultiBinaryObs-v0", 19.5),
    ("ToyImageObsLast-v0", 19.5),  # 20x20 RGB bytes given [H, W, C]: through the A3C conv torso
    ("ToyDictObs-v0", 19.5),  # a Discrete part and an image part each hold half the target
    ("ToyTupleObs-v0", 19.5),  # two Discrete digits in a Tuple, as Blackjack's
    ("ToyMultiDiscreteAction-v0", 19.5),  # two targets, named by independent categoricals
    ("ToyMultiBinaryAction-v0", 19.0),  # four bits, copied by a Bernoulli each
])
def test_a2c_learns_each_observation_and_action_space(tmp_path, env_id, target):
    model = A2C(f"tests.toy_envs:{env_id}", seed=0, verbose=0, preset="classic-control-a2c", **FAST)
    learns(model, target, BUDGET, tmp_path)


def test_a2c_learns_box_actions(tmp_path):
    # reward -(a - x)^2 summed over 2 dimensions: an untrained policy's mean 0 scores about -13
    model = A2C("tests.toy_envs:ToyBoxAction-v0", seed=0, verbose=0, preset="continuous-control",
                eval_interval=1000, eval_episodes=5, final_eval_episodes=20, checkpoint_interval=0)
    learns(model, -1.0, 2 * BUDGET, tmp_path)


@pytest.mark.parametrize("env_id", ["ToyDictObs-v0", "ToyMultiDiscreteAction-v0"])
def test_a3c_learns_a_dict_observation_and_a_multi_discrete_action(tmp_path, env_id):
    model = A3C(f"tests.toy_envs:{env_id}", workers=2, seed=0, verbose=0, preset="classic-control", **FAST)
    learns(model, 19.5, 2 * BUDGET, tmp_path)
