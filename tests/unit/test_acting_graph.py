"""The loss of a feed-forward network reuses the rollout's own forward passes: the gradients must be
those of running the forward passes again over the rollout (the plain path recurrent nets take)."""

import gymnasium as gym
import pytest
import torch

from a3c.config import Config
from a3c.core.gradients import compute_gradients
from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.rollout import RolloutCollector
from a3c.envs.make import make_training_envs
from a3c.presets import build_config

NETWORKS = {  # env id: network options
    "CartPole-v1": dict(hidden_sizes=(32,)),
    "Pendulum-v1": dict(shared_torso=False, obs_norm=True, policy_sizes=(16,)),
    "MountainCarContinuous-v0": dict(use_sde=True),
    "PongNoFrameskip-v4": dict(torso="a3c-conv"),
}


def learner(env_id: str, options: dict, n_envs: int = 3) -> tuple[ActorCritic, RolloutCollector, Config]:
    config = build_config(env_id, algo="a3c", n_envs=n_envs, n_steps=5, **(
        dict(vec_env="ale") if "NoFrameskip" in env_id else dict(vec_env="sync")))
    envs = make_training_envs(config, seed=0)
    torch.manual_seed(0)
    net = ActorCritic(NetworkSpec.from_spaces(envs.single_observation_space, envs.single_action_space,
                                              **options))
    return net, RolloutCollector(envs, config.n_steps, seed=0), config


@pytest.mark.parametrize("env_id", list(NETWORKS))
def test_gradients_from_the_kept_acting_graph_equal_those_of_the_forward_passes_run_again(env_id):
    net, collector, config = learner(env_id, NETWORKS[env_id])
    assert net.keeps_acting_graph
    for _ in range(2):  # the second rollout starts from a network the first one's loss went through
        rollout = collector.collect(net)
        assert len(rollout.graph) == config.n_steps
        kept_stats = compute_gradients(net, rollout, config)
        kept = [p.grad.clone() for p in net.params]
        assert rollout.graph == []  # the loss took the graph
        # No graph now: compute_gradients runs evaluate_actions over the rollout, as for an LSTM.
        recomputed_stats = compute_gradients(net, rollout, config)
        assert kept_stats.total_loss == pytest.approx(recomputed_stats.total_loss, rel=1e-5, abs=1e-6)
        assert kept_stats.grad_norm == pytest.approx(recomputed_stats.grad_norm, rel=1e-4)
        for (name, p), grad in zip(net.named_parameters(), kept, strict=True):
            torch.testing.assert_close(grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)
        collector.update_statistics(net)
    collector.envs.close()


def test_an_unused_graph_is_dropped_by_the_next_rollout_and_a_recurrent_net_keeps_none():
    net, collector, config = learner("CartPole-v1", NETWORKS["CartPole-v1"])
    collector.collect(net)
    rollout = collector.collect(net)  # the first rollout's loss was never computed
    assert len(rollout.graph) == config.n_steps

    lstm, collector, _ = learner("CartPole-v1", dict(core="lstm", core_size=16))
    assert not lstm.keeps_acting_graph
    rollout = collector.collect(lstm)
    assert rollout.graph == [] and rollout.take_graph() is None
    compute_gradients(lstm, rollout, config)
    assert all(p.grad is not None for p in lstm.params)


def test_a_user_torso_runs_its_forward_again_for_the_loss():
    spec = NetworkSpec.from_spaces(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2),
                                   torso="tests.custom_torsos:ResidualMLP")
    assert not ActorCritic(spec, trust_code=True).keeps_acting_graph
