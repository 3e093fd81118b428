"""A3C and sweeps on a Ray cluster of several nodes, all on this machine's loopback.

The module starts one cluster with Ray's own utilities: a head node with no CPU (it runs the driver's
parameter server, never a worker) and two nodes of 1 CPU, each with its own raylet and object
store, so the workers' gradients and parameters cross between object stores as between machines.
The GCS declares a node dead after 5 missed health checks 0.2 s apart (the default takes 15 s). The
test that kills a node runs last: the cluster has one worker node left after it.
"""

import csv
import json
import threading
import time

import pytest

from a3c import A3C, Callback
from a3c.run.checkpoint import load_checkpoint
from tests.ray_nodes import SAFETY_SECONDS, after, kill_node, listening_addresses, short_tempdir

OBJECT_STORE = 80 * 1024 * 1024  # Ray's minimum is 75 MiB
FAST_NODE_DEATH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 200,
                   "health_check_failure_threshold": 5}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def nodes():
    """A head node (0 CPUs) and two worker nodes (1 CPU each) on 127.0.0.1; this process joins it."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from a3c.drivers.ray.connection import LOOPBACK, connect, loopback_only

    common = dict(node_ip_address=LOOPBACK, object_store_memory=OBJECT_STORE)
    with short_tempdir() as tmp, pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", tmp)  # its address file goes there, not in the machine's /tmp/ray
        with loopback_only():
            cluster = Cluster(initialize_head=True, head_node_args=dict(
                num_cpus=0, include_dashboard=False, _system_config=FAST_NODE_DEATH, **common))
            for _ in range(2):
                cluster.add_node(num_cpus=1, **common)
        try:
            connect(cluster.address, cpus=0)
            yield cluster
        finally:
            ray.shutdown()
            cluster.shutdown()


def test_every_node_reports_and_listens_on_loopback_only(nodes):
    import ray

    reported = {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]}
    assert reported == {"127.0.0.1"} and len(ray.nodes()) == 3
    assert nodes.address.startswith("127.0.0.1:")
    pids = [info.process.pid for node in nodes.list_all_nodes()
            for infos in node.all_processes.values() for info in infos]
    assert len(pids) >= 6  # GCS, raylets, their agents: all of them listen somewhere
    assert listening_addresses(pids) == {"127.0.0.1"}


@pytest.mark.slow
def test_workers_on_other_nodes_than_the_server_learn_and_the_counts_agree(nodes, drivers, tmp_path):
    import ray

    placed = {}

    def look():  # where the actors run, seen from the outside while the run goes on
        # The server first, as soon as it exists: the driver lets go of it when the run ends, and a
        # run can end within a second of its workers' nodes being known.
        after(lambda: drivers and drivers[0].server is not None)
        placed["server"] = ray.get(drivers[0].server.node.remote())
        after(lambda: len(drivers[0].worker_nodes) == 2)  # kept by the driver after the run
        placed["workers"] = dict(drivers[0].worker_nodes)

    class UntilBothLearned(Callback):
        """Stop at the first greedy 19 once both workers have sent updates: the toy task can be
        learned by one worker alone while the other's actor still starts on its node."""

        def __init__(self):
            self.ranks = set()

        def on_reports(self, reports):
            self.ranks |= {r.rank for r in reports if r.updates}

        def on_evaluation(self, result):
            return not (self.ranks == {0, 1} and result.mean_return >= 19.0)

    looker = threading.Thread(target=look, daemon=True)
    looker.start()
    model = A3C("tests.toy_envs:ToyIdentity-v0", backend="ray", ray_address=nodes.address, workers=2,
                seed=0, verbose=0, n_steps=5, lr=1e-3, eval_interval=1_000, eval_episodes=5,
                final_eval_episodes=5, checkpoint_interval=2_000, log_interval=0.2, target_return=None)
    model.learn(total_steps=10**7, max_seconds=SAFETY_SECONDS, callback=UntilBothLearned(), run_dir=tmp_path)
    looker.join(timeout=5)
    r = model.last_result
    assert r.stop_reason == "callback" and r.final_eval.mean_return >= 19.0, r
    head = nodes.head_node.node_id
    assert placed["server"] == head
    assert len(set(placed["workers"].values())) == 2 and head not in placed["workers"].values()
    # Counters, logs and checkpoints agree as on one node: every step is in an episode logged or
    # in one still running at the end, and the checkpoint holds the driver's counts.
    assert r.episode_steps + r.unfinished_steps == r.steps
    ckpt = load_checkpoint(tmp_path / "model.safetensors")
    assert (ckpt.counters["steps"], ckpt.counters["updates"]) == (r.steps, r.updates)
    assert sum(steps for steps, _ in drivers[0].worker_counts.values()) == r.steps
    assert {row["worker"] for row in rows(tmp_path / "updates.csv")} == {"0", "1"}
    [where] = [e["detail"] for e in rows(tmp_path / "events.csv") if e["event"] == "ray"]
    assert "3 node(s) at 127.0.0.1, 2 CPUs" in where


@pytest.mark.slow
def test_a_sweep_runs_its_trials_on_the_cluster_and_resumes_only_what_is_unfinished(nodes, a3c_cli,
                                                                                   tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('envs = ["tests.toy_envs:ToyIdentity-v0"]\nseeds = [0, 1]\nalgo = "a2c"\n'
                    "[options]\ntotal_steps = 800\nn_envs = 2\nn_steps = 5\nfinal_eval_episodes = 3\n"
                    "eval_interval = 0\ncheckpoint_interval = 200\n[grid]\nlr = [0.01]\n")
    out = tmp_path / "sweep"
    first = a3c_cli("sweep", grid, "--out", out, "--ray-address", nodes.address)
    assert first.returncode == 0, first.stderr
    assert "2 trials, 0 finished before, 2 to run" in first.stderr
    trials = sorted((out / "trials").iterdir())
    assert [t.name for t in trials] == [f"tests.toy_envs_ToyIdentity-v0__lr=0.01__seed={s}" for s in (0, 1)]
    results = []
    for trial in trials:  # each trial a normal run directory
        for name in ("run.json", "model.safetensors", "episodes.csv", "evaluations.csv"):
            assert (trial / name).is_file(), (trial, name)
        results.append(json.loads((trial / "trial.json").read_text()))
        assert results[-1]["steps"] >= 800 and not results[-1]["resumed"]
    [summary] = rows(out / "summary.csv")
    assert (summary["options"], summary["runs"], summary["seeds"]) == ("lr=0.01", "2", "0 1")
    scores = [r["score"] for r in results]
    assert float(summary["median"]) == float(summary["iqm"]) == pytest.approx(sum(scores) / 2)
    assert min(scores) <= float(summary["iqm_ci_low"]) <= float(summary["iqm_ci_high"]) <= max(scores)
    assert "| tests.toy_envs:ToyIdentity-v0 | lr=0.01 | 2 |" in first.stdout
    # A trial killed after a periodic checkpoint (its result and final checkpoint never written)
    # goes on from that checkpoint; the finished one is not run again.
    cut, done = trials
    (cut / "trial.json").unlink()
    (cut / "model.safetensors").unlink()
    finished = (done / "trial.json").stat().st_mtime_ns
    again = a3c_cli("sweep", grid, "--out", out, "--ray-address", nodes.address)
    assert again.returncode == 0, again.stderr
    assert "2 trials, 1 finished before, 1 to run" in again.stderr
    resumed = json.loads((cut / "trial.json").read_text())
    assert resumed["resumed"] and resumed["steps"] >= 800
    assert [e["event"] for e in rows(cut / "events.csv")].count("resumed") == 1
    assert (done / "trial.json").stat().st_mtime_ns == finished


@pytest.mark.slow
def test_a_lost_node_s_worker_is_started_again_on_a_node_left_and_the_run_reaches_its_target(
        nodes, drivers, tmp_path):
    # One worker, its node killed as soon as it has joined. ToyIdentity is learned within a few
    # thousand steps, so the first evaluation comes only at 10,000, well after the kill: the target
    # is then confirmed only once the worker started in place of the lost one has learned.
    killed = {}

    def kill_the_worker_s_node():
        after(lambda: drivers and drivers[0].worker_nodes)
        node_id = drivers[0].worker_nodes[0]
        [node] = [n for n in nodes.worker_nodes if n.node_id == node_id]
        killed.update(node=node_id, steps=drivers[0].steps(), pids=kill_node(node), time=time.time())

    threading.Thread(target=kill_the_worker_s_node, daemon=True).start()
    model = A3C("tests.toy_envs:ToyIdentity-v0", backend="ray", ray_address=nodes.address, workers=1,
                seed=0, verbose=0, n_steps=5, lr=5e-4, eval_interval=10_000, eval_episodes=5,
                final_eval_episodes=5, checkpoint_interval=0, log_interval=0.2, max_restarts=1)
    model.learn(total_steps=60_000, target_return=19.0, run_dir=tmp_path)
    r = model.last_result
    assert killed and len(killed["pids"]) >= 3, killed  # its raylet, agents, the worker
    assert killed["steps"] < 10_000, killed  # the lost worker did not reach the first evaluation
    assert r.stop_reason == "target_return" and r.worker_restarts == 1, r
    events = rows(tmp_path / "events.csv")
    [lost] = [e for e in events if e["event"] == "node_lost"]
    assert f"Ray node {killed['node'][:8]} is gone; its workers (0)" in lost["detail"]
    [restart] = [e for e in events if e["event"] == "worker_restarted"]
    assert f"(was {killed['node'][:8]})" in restart["detail"]
    assert drivers[0].worker_nodes[0] != killed["node"]
    # A worker stamps its reports with its own clock, where the events' steps are stamped when the
    # driver next hears of them, which may be after the new worker's first updates.
    since_kill = killed["time"] - json.loads((tmp_path / "run.json").read_text())["start_time"]
    later = [u for u in rows(tmp_path / "updates.csv") if float(u["wall_time"]) > since_kill]
    assert sum(int(u["updates"]) for u in later) > 0  # the new worker learned, up to the target
    assert r.episode_steps + r.unfinished_steps <= r.steps  # the lost worker's last episodes went with it
