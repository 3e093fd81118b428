"""A Dict observation and MultiDiscrete actions on A3C's Ray backend: workers as Ray actors around a
parameter server, on a local Ray instance (2 CPUs, loopback) started for this module."""

from __future__ import annotations

import logging

import pytest

from a3c import A3C


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def test_ray_workers_train_a_dict_observation_with_multi_discrete_actions(local_ray, tmp_path):
    model = A3C("tests.toy_envs:ToyDictObsMultiDiscreteAction-v0", backend="ray", workers=2, seed=0,
                verbose=0, eval_interval=0, final_eval_episodes=3, checkpoint_interval=0)
    model.learn(total_steps=1000, run_dir=tmp_path)
    result = model.last_result
    assert result.steps >= 1000 and result.updates > 0 and result.worker_restarts == 0
    assert len(result.final_eval.returns) == 3 and (tmp_path / "model.safetensors").is_file()
