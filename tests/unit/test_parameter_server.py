"""The parameter server's bookkeeping, without Ray: update rule, staleness, publication, state."""

import numpy as np
import pytest
import torch

from a3c.core.networks import ActorCritic, NetworkSpec
from a3c.core.optim import load_optimizer_tensors, make_optimizer, optimizer_tensors
from a3c.drivers.ray.server import (
    ParameterServer,
    flat_gradients,
    flat_parameters,
    load_flat_parameters,
)
from a3c.presets import build_config

SPEC = NetworkSpec(obs_dim=4, action_kind="discrete", action_dim=2, hidden_sizes=(8, 8),
                   shared_torso=False)


class Store:
    """Stands in for ray.put: counts puts and keeps a copy, as the object store does."""

    def __init__(self):
        self.puts = []

    def __call__(self, array):
        self.puts.append(np.array(array, copy=True))
        return len(self.puts) - 1


def server(optimizer="adam", total_steps=10**6, start_steps=0, **kw):
    config = build_config("CartPole-v1", optimizer=optimizer, hidden_sizes=(8, 8), total_steps=total_steps)
    torch.manual_seed(0)
    net = ActorCritic(SPEC)
    opt = make_optimizer(config, net.parameters(), shared=True)
    store = Store()
    ps = ParameterServer(config, SPEC, net.state_dict(), optimizer_tensors(opt, net), start_steps,
                         put=store, **kw)
    return ps, net, opt, store


def push(ps, rank, grad, pulled_version, steps):
    """One gradient in a call, as a worker with gradients_per_push 1 sends it."""
    return ps.push(rank, [pulled_version], [steps], None, grad)


def gradient(seed):
    g = torch.Generator().manual_seed(seed)
    net = ActorCritic(SPEC)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=g)
    return net, flat_gradients(net)


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_pushed_gradients_update_as_the_local_shared_optimizer_does(name):
    ps, net, opt, _ = server(name, publish_spacing=0)
    for seed in range(3):
        source, flat = gradient(seed)
        push(ps, 0, flat, ps.version, 10)
        for p, q in zip(net.parameters(), source.parameters(), strict=True):
            p.grad = q.grad.clone()
        opt.step()
    snapshot = ps.snapshot()
    for key, value in net.state_dict().items():
        torch.testing.assert_close(torch.from_numpy(snapshot.model_state[key]), value)
    expected = optimizer_tensors(opt, net)
    assert snapshot.optimizer_state.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(torch.from_numpy(snapshot.optimizer_state[key]), value)
    assert (snapshot.steps, snapshot.updates) == (30, 3)


def test_gradients_sent_together_are_applied_as_separate_updates_in_order():
    one, *_ = server(publish_spacing=0)
    batched, *_ = server(publish_spacing=0)
    grads = [gradient(seed)[1] for seed in range(3)]
    for g in grads:
        push(one, 0, g, 0, 10)
    reply = batched.push(0, [0, 0, 0], [10, 10, 10], None, *grads)
    assert reply.staleness == (0, 0, 0)  # all three from one worker: its own updates are no one else's
    np.testing.assert_array_equal(flat_parameters(batched.net), flat_parameters(one.net))
    assert (batched.version, batched.steps) == (3, 30)


def test_optimizer_state_goes_in_and_out_by_parameter_name():
    ps, net, opt, _ = server()
    push(ps, 0, gradient(0)[1], 0, 5)
    snapshot = ps.snapshot()
    state = {k: torch.from_numpy(v) for k, v in snapshot.optimizer_state.items()}
    model = {k: torch.from_numpy(v) for k, v in snapshot.model_state.items()}
    again = ParameterServer(ps.config, SPEC, model, state, put=Store())
    for key, value in again.snapshot().optimizer_state.items():
        np.testing.assert_array_equal(value, state[key].numpy())
    load_optimizer_tensors(opt, net, state)  # what the driver does with it: fits the trainer's optimizer


def test_staleness_counts_updates_by_others_between_pull_and_push():
    ps, *_ = server()
    g = gradient(0)[1]
    assert push(ps, 1, g, 0, 1).staleness == (0,)
    pulled = ps.version  # worker 0 pulls version 1
    push(ps, 1, g, 1, 1)
    push(ps, 1, g, 2, 1)
    assert push(ps, 0, g, pulled, 1).staleness == (2,)
    # Two pushes from the same pull (the first still in flight at the pull): its own update is no
    # one else's, so only worker 1's update counts.
    pulled = ps.version
    assert push(ps, 0, g, pulled, 1).staleness == (0,)
    push(ps, 1, g, ps.version, 1)
    assert push(ps, 0, g, pulled, 1).staleness == (1,)


def test_parameters_are_put_once_per_version_and_each_reference_sent_once_per_worker():
    ps, _, _, store = server(publish_spacing=0, inline_bytes=0)
    assert len(store.puts) == 1 and ps.join(0).reply.params == 0
    assert ps.join(1).reply.params == 0 and len(store.puts) == 1  # same version: no new put
    g = gradient(0)[1]
    reply = push(ps, 0, g, 0, 1)
    assert (reply.version, reply.params, len(store.puts)) == (1, 1, 2)
    np.testing.assert_array_equal(store.puts[1], flat_parameters(ps.net))
    assert ps.join(0).reply.params == 1  # a (re)started worker always gets the reference
    reply = push(ps, 1, g, 1, 1)
    assert reply.params == 2
    assert push(ps, 1, g, 2, 1).params == 3


def test_small_networks_travel_inline_in_the_replies_never_through_the_store():
    ps, _, _, store = server()  # 8-8 hidden units: a few hundred bytes
    assert ps.inline and not store.puts
    first = ps.join(0).reply
    np.testing.assert_array_equal(first.params, flat_parameters(ps.net))
    g = gradient(0)[1]
    reply = push(ps, 0, g, 0, 1)
    assert reply.version == 1
    np.testing.assert_array_equal(reply.params, flat_parameters(ps.net))  # every new version
    assert reply.params is not first.params  # a copy: later updates do not change what was sent
    assert ps.join(1).reply.version == 1 and not store.puts
    assert push(ps, 1, g, 1, 1).params is not None and push(ps, 1, g, 1, 1).params is not None


def test_publication_is_spaced_out_in_time(monkeypatch):
    # after the first put, none for long: the gap's cap raised, so that a loaded machine's slow
    # pushes do not outlast it
    monkeypatch.setattr("a3c.drivers.ray.server.MAX_PUBLISH_GAP", 3600.0)
    ps, _, _, store = server(publish_spacing=10**6, inline_bytes=0)
    g = gradient(0)[1]
    replies = [push(ps, 0, g, 0, 1) for _ in range(5)]
    assert len(store.puts) == 1 and all(r.version == 0 for r in replies)
    assert replies[0].params == 0 and all(r.params is None for r in replies[1:])  # once per worker
    assert ps.join(0).reply.version == 5 and len(store.puts) == 2  # the first pull forces a put


def test_stop_when_total_steps_reached_or_asked():
    ps, *_ = server(total_steps=20)
    g = gradient(0)[1]
    assert not push(ps, 0, g, 0, 10).stop
    assert push(ps, 0, g, 1, 10).stop
    ps2, *_ = server()
    ps2.request_stop()
    assert ps2.join(0).reply.stop


def test_reports_are_handed_to_the_driver_once():
    from a3c.core.messages import LearnerReport

    ps, *_ = server()
    ps.report(LearnerReport(rank=3))
    assert [r.rank for r in ps.snapshot().reports] == [3]
    assert ps.snapshot().reports == []


def test_flat_parameters_round_trip_through_a_read_only_array():
    a, b = ActorCritic(SPEC), ActorCritic(SPEC)
    flat = flat_parameters(a)
    flat.setflags(write=False)  # as arrays read from the object store are
    load_flat_parameters(b, flat)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_worker_starting_again_is_counted_as_a_restart_and_skipped_steps_count():
    ps, *_ = server(start_steps=500)
    assert [ps.join(0, "node-a").incarnation, ps.join(1, "node-a").incarnation] == [0, 0]
    assert ps.snapshot().restarts == 0
    again = ps.join(1, "node-b")  # worker 1's actor was started again, on another node
    assert (again.incarnation, again.start_steps) == (1, 500)  # what its seeds are drawn from
    ps.skip(1, 7)
    snapshot = ps.snapshot()
    assert snapshot.restarts == 1 and [kind for kind, _ in snapshot.events] == ["worker_restarted"]
    assert "on node node-b (was node-a)" in snapshot.events[0][1]
    assert snapshot.worker_nodes == {0: "node-a", 1: "node-b"} and snapshot.starts == {0: 1, 1: 2}
    assert snapshot.steps == 507 and snapshot.worker_counts[1] == (7, 0)
    assert ps.snapshot().events == []


def test_a_server_restored_from_a_snapshot_goes_on_from_it_and_counts_what_was_lost():
    ps, *_ = server(start_steps=100)
    ps.join(0)
    g = gradient(0)[1]
    for _ in range(3):
        push(ps, 0, g, ps.version, 10)
    snapshot = ps.snapshot()
    for _ in range(2):  # applied after the snapshot: lost with this server
        push(ps, 0, g, ps.version, 10)
    model = {k: torch.from_numpy(v) for k, v in snapshot.model_state.items()}
    optimizer = {k: torch.from_numpy(v) for k, v in snapshot.optimizer_state.items()}
    restored = ParameterServer(ps.config, SPEC, model, optimizer, start_steps=100, put=Store(),
                               restored=snapshot, generation=1)
    assert (restored.version, restored.steps) == (3, 130)
    np.testing.assert_array_equal(flat_parameters(restored.net), np.concatenate(
        [snapshot.model_state[name].reshape(-1) for name in restored.names]))
    # The worker had sent 5 updates (50 steps) and holds one more it never sent: 3 of them lost.
    joined = restored.rejoin(0, (60, 6))
    assert (joined.generation, joined.counts, joined.incarnation) == (1, (30, 3), 0)
    [(kind, detail)] = restored.snapshot().events
    assert kind == "updates_lost" and "3 of its updates (30 env steps)" in detail
    assert restored.join(0).incarnation == 1  # the starts counted before the loss go on


def test_observation_moments_pushed_by_workers_make_the_global_statistics():
    spec = NetworkSpec(obs_dim=3, action_kind="box", action_dim=1, hidden_sizes=(8, 8),
                       shared_torso=False, obs_norm=True)
    config = build_config("Pendulum-v1", hidden_sizes=(8, 8))
    net = ActorCritic(spec)
    opt = make_optimizer(config, net.parameters(), shared=True)
    ps = ParameterServer(config, spec, net.state_dict(), optimizer_tensors(opt, net), put=Store())
    workers = [ActorCritic(spec), ActorCritic(spec)]
    seen = []
    for rank, worker in enumerate(workers):
        worker.normalizer.take_recent()
        batch = torch.randn(20, 3) * (rank + 1) + rank
        worker.normalizer.update(batch)
        seen.append(batch)
        for p in worker.parameters():
            p.grad = torch.zeros_like(p)
        count, mean, var = worker.normalizer.take_recent()
        reply = ps.push(rank, [ps.version], [20], ((count, mean.numpy(), var.numpy()),),
                        flat_gradients(worker))
    every = torch.cat(seen)
    (count, mean, var), = reply.statistics  # sent with the new parameters
    assert count == pytest.approx(40 + 1e-4)
    np.testing.assert_allclose(mean, every.mean(0).numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(var, every.var(0, unbiased=False).numpy(), rtol=1e-3)
    assert "normalizer.mean" in ps.snapshot().model_state  # and in the driver's checkpoints


def test_return_moments_go_with_the_observation_moments_to_the_server_and_back():
    spec = NetworkSpec(obs_dim=3, action_kind="box", action_dim=1, hidden_sizes=(8, 8),
                       shared_torso=False, obs_norm=True, reward_norm=True)
    config = build_config("Pendulum-v1", hidden_sizes=(8, 8), reward_norm=True)
    net = ActorCritic(spec)
    opt = make_optimizer(config, net.parameters(), shared=True)
    ps = ParameterServer(config, spec, net.state_dict(), optimizer_tensors(opt, net), put=Store())
    worker = ActorCritic(spec)
    for normalizer in worker.normalizers():
        normalizer.take_recent()
    worker.normalizer.update(torch.randn(20, 3))
    returns = np.arange(20.0).reshape(10, 2)
    worker.return_normalizer.observe(np.zeros(2), returns, np.zeros((10, 2), bool), 0.0)
    for p in worker.parameters():
        p.grad = torch.zeros_like(p)
    observed = tuple((c, m.numpy(), v.numpy()) for c, m, v in (n.take_recent() for n in worker.normalizers()))
    reply = ps.push(0, [ps.version], [20], observed, flat_gradients(worker))
    _, (count, mean, var) = reply.statistics  # obs_norm's, then reward_norm's
    assert count == pytest.approx(20 + 1e-4)
    np.testing.assert_allclose(var, [returns.var()], rtol=1e-3)  # gamma 0: the returns are the rewards
    assert "return_normalizer.var" in ps.snapshot().model_state  # and in the driver's checkpoints
