"""The Ray backend on a real local Ray instance (2 CPUs, loopback), started once for this module.

Skipped where Ray is not installed, except the test that `--backend ray` then says what to install.
Several nodes, a lost node and sweeps: tests/integration/test_ray_cluster.py.
"""

import csv
import json
import os
import signal
import threading
import time

import pytest

from a3c import A3C, Callback, TrainingError, WorkerError
from a3c.drivers.base import learner_seed
from a3c.run.checkpoint import load_checkpoint
from tests.ray_nodes import SAFETY_SECONDS, after, short_tempdir


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_without_ray_backend_ray_says_what_to_install(a3c_cli, tmp_path, monkeypatch):
    stub = tmp_path / "stub" / "ray"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    monkeypatch.setenv("PYTHONPATH", str(stub.parent))
    result = a3c_cli("train", "CartPole-v1", "--backend", "ray", "--run-dir", tmp_path / "run")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("a3c: error:"), result.stderr
    assert 'pip install "a3c[ray]"' in lines[0]
    assert not (tmp_path / "run").exists()


def test_a_local_instance_that_cannot_start_is_one_error_line_and_nothing_is_left_running(
        a3c_cli, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    # Ray's sockets go under RAY_TMPDIR, and a Unix socket's path has at most 107 bytes.
    deep = tmp_path / ("d" * 110)
    deep.mkdir()
    monkeypatch.setenv("RAY_TMPDIR", str(deep))
    result = a3c_cli("train", "CartPole-v1", "--backend", "ray", "--run-dir", tmp_path / "run")
    assert result.returncode == 1, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("a3c: error:")]
    assert line.startswith("a3c: error: the local Ray instance did not start: ") and "107 bytes" in line
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
    session = [p for p in deep.glob("ray/session_*") if p.is_dir() and not p.is_symlink()]
    assert session  # Ray got as far as its session directory
    assert not any(str(deep) in " ".join(p.cmdline) for p in _processes()), "Ray processes left"


def test_through_the_api_a_local_instance_that_cannot_start_leaves_the_process_free_to_try_again(
        tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    deep = tmp_path / ("d" * 110)
    deep.mkdir()
    monkeypatch.setenv("RAY_TMPDIR", str(deep))
    model = A3C("CartPole-v1", backend="ray", workers=1, seed=0, verbose=0)
    with pytest.raises(TrainingError, match="the local Ray instance did not start: .*107 bytes"):
        model.learn(total_steps=2_000, run_dir=tmp_path / "failed")
    assert not ray.is_initialized()
    [event] = rows(tmp_path / "failed" / "events.csv")  # the run directory says why it is empty
    assert event["event"] == "failed" and event["detail"].startswith("the local Ray instance did not start")
    assert not rows(tmp_path / "failed" / "updates.csv")
    assert not any(str(deep) in " ".join(p.cmdline) for p in _processes()), "Ray processes left"
    # The same model in the same process then trains once Ray can start.
    monkeypatch.delenv("RAY_TMPDIR")
    try:
        model.learn(total_steps=2_000, run_dir=tmp_path / "run")
    finally:
        ray.shutdown()
    assert model.num_steps >= 2_000 and (tmp_path / "run" / "run.json").is_file()


def _processes():
    """Every process's command line, from /proc."""
    from types import SimpleNamespace

    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    out.append(SimpleNamespace(cmdline=f.read().decode(errors="replace").split("\0")))
            except OSError:
                pass
    return out


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance on loopback with 2 CPUs, started as a run starts one; yields its address
    for clients to join."""
    ray = pytest.importorskip("ray")
    from a3c.drivers.ray.connection import connect

    before = signal.getsignal(signal.SIGTERM)
    connect(None, cpus=2)
    SIGTERM_HANDLERS.extend([before, signal.getsignal(signal.SIGTERM)])
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


SIGTERM_HANDLERS = []  # before and after the module's instance started


def test_starting_ray_leaves_sigterm_to_the_run(cluster):
    # ray.init makes SIGTERM exit at once; a run's SIGTERM must stop it cleanly, with a checkpoint.
    before, after_start = SIGTERM_HANDLERS
    assert after_start is before


@pytest.mark.slow
def test_cartpole_is_solved_with_the_ray_backend(cluster, tmp_path):
    # Measured on a 2-core machine: the greedy evaluation reaches 500 after 20k-40k steps.
    model = A3C("CartPole-v1", backend="ray", workers=2, seed=0, verbose=0, eval_interval=5_000,
                eval_episodes=5, final_eval_episodes=20, checkpoint_interval=10_000)
    model.learn(total_steps=150_000, target_return=500.0, run_dir=tmp_path)
    result = model.last_result
    assert result.final_eval.mean_return >= 475.0, result
    # The same run directory as a local run, with the staleness the server measured.
    for name in ("episodes.csv", "updates.csv", "evaluations.csv", "run.json", "model.safetensors"):
        assert (tmp_path / name).is_file(), name
    updates = rows(tmp_path / "updates.csv")
    assert {row["worker"] for row in updates} == {"0", "1"}
    assert 0 < result.staleness_mean <= result.staleness_max
    ckpt = load_checkpoint(tmp_path / "model.safetensors")
    assert ckpt.config.backend == "ray" and ckpt.counters["steps"] == result.steps
    assert ckpt.optimizer_state  # the server's optimizer state came back with its parameters
    loaded = A3C.load(tmp_path, verbose=0)
    assert loaded.evaluate(5, seed=1_000_000).mean_return >= 475.0


@pytest.mark.slow
def test_observation_statistics_gather_what_every_worker_saw(cluster, tmp_path):
    # Pendulum's preset normalises observations: each worker sends the moments of what it observed
    # with its gradients, and the server's statistics, saved in the checkpoint, count every step.
    model = A3C("Pendulum-v1", backend="ray", workers=2, n_envs=2, seed=0, verbose=0,
                eval_interval=0, final_eval_episodes=1)
    assert model.config.obs_norm
    model.learn(total_steps=6_000, run_dir=tmp_path)
    ckpt = load_checkpoint(tmp_path / "model.safetensors")
    steps = ckpt.counters["steps"]
    assert steps >= 6_000
    assert float(ckpt.model_state["normalizer.count"]) == pytest.approx(steps + 1e-4)
    mean, var = ckpt.model_state["normalizer.mean"], ckpt.model_state["normalizer.var"]
    assert (mean[:2].abs() <= 1).all() and (var > 0).all() and var[2] > var[:2].max()  # cos, sin, speed


@pytest.mark.slow
def test_a_killed_worker_actor_is_restarted_and_training_goes_on(cluster, drivers, tmp_path):
    import ray

    model = A3C("CartPole-v1", backend="ray", workers=2, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=0, log_interval=0.5)
    killed_at = []

    def kill_worker_0():
        after(lambda: drivers and drivers[0].steps() >= 3_000)
        ray.kill(drivers[0].workers[0], no_restart=False)  # as if its process crashed
        killed_at.append(time.time())

    class UntilWorker0LearnsAgain(Callback):
        """Stop once worker 0's updates arrive again well after the kill: however long its restart
        takes on a busy machine, the run lasts until then (or fails at SAFETY_SECONDS, which count
        Ray's start-up too: over 90 s on a machine whose cores other work keeps busy)."""

        def on_reports(self, reports):
            again = killed_at and time.time() > killed_at[0] + 2.0
            return not (again and any(r.rank == 0 and r.updates for r in reports))

    killer = threading.Thread(target=kill_worker_0, daemon=True)
    killer.start()
    model.learn(total_steps=10**7, max_seconds=SAFETY_SECONDS, callback=UntilWorker0LearnsAgain(),
                run_dir=tmp_path)
    killer.join(timeout=5)
    assert killed_at, "the worker was never killed"
    assert model.last_result.stop_reason == "callback", "worker 0 did not learn again in time"
    # The restarted worker 0 went on learning: it finished episodes and updates after the kill.
    start = json.loads((tmp_path / "run.json").read_text())["start_time"]
    late = [r for r in rows(tmp_path / "updates.csv")
            if r["worker"] == "0" and start + float(r["wall_time"]) > killed_at[0] + 0.5]
    assert late, "worker 0 never reported again after it was killed"
    assert drivers[0].restarts == 1  # seen by the parameter server when the new actor first pulled


@pytest.mark.slow
def test_a_raising_worker_is_replaced_and_its_error_logged(cluster, drivers, tmp_path):
    # Every incarnation of a ToyFailing worker raises at its env's 50th step, after 40 steps of updates.
    model = A3C("tests.toy_envs:ToyFailing-v0", backend="ray", workers=1, n_envs=1, seed=0, verbose=0,
                eval_interval=0, final_eval_episodes=0, checkpoint_interval=0, log_interval=0.2,
                max_restarts=50)
    model.learn(total_steps=150, run_dir=tmp_path)
    result = model.last_result
    assert result.stop_reason == "total_steps" and result.steps >= 150
    restarts = [e for e in rows(tmp_path / "events.csv") if e["event"] == "worker_restarted"]
    assert len(restarts) == result.worker_restarts == 3  # 40 steps per incarnation
    for e in restarts:
        assert "worker 0 failed: RuntimeError: toy env broke on purpose" in e["detail"], e


@pytest.mark.slow
def test_a_raising_worker_beyond_max_restarts_stops_the_run_with_its_traceback(cluster, tmp_path):
    model = A3C("tests.toy_envs:ToyFailing-v0", backend="ray", workers=1, n_envs=1, seed=0, verbose=0,
                eval_interval=0, final_eval_episodes=0, max_restarts=1)
    with pytest.raises(WorkerError, match="no restarts left") as info:
        model.learn(total_steps=10**6, run_dir=tmp_path)
    assert "RuntimeError: toy env broke on purpose" in str(info.value)


@pytest.mark.slow
def test_a_worker_death_beyond_max_restarts_stops_the_run(cluster, drivers, tmp_path):
    import ray

    model = A3C("CartPole-v1", backend="ray", workers=2, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=0, max_restarts=0)

    def kill_worker_1():
        after(lambda: drivers and drivers[0].steps() >= 2_000)
        ray.kill(drivers[0].workers[1], no_restart=False)

    threading.Thread(target=kill_worker_1, daemon=True).start()
    with pytest.raises(WorkerError, match="worker 1 died and max_restarts"):
        model.learn(total_steps=10**7, run_dir=tmp_path)
    assert load_checkpoint(tmp_path / "model.safetensors").counters["steps"] >= 2_000


@pytest.mark.slow
def test_a_lost_parameter_server_is_restored_and_a_second_loss_soon_after_stops_the_run(
        cluster, drivers, tmp_path):
    import ray

    model = A3C("CartPole-v1", backend="ray", workers=2, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=0, checkpoint_interval=2_000, log_interval=0.2)
    periodic = tmp_path / "checkpoints"
    kills = []

    def kill_server_process():  # SIGKILL, as the kernel's OOM killer or a crash would end it
        os.kill(ray.get(drivers[0].server.pid.remote()), signal.SIGKILL)
        kills.append(drivers[0].steps())

    def kill_twice():
        # the first loss once both workers have sent updates: a worker whose actor is still starting
        # joins the new server as a new worker, with nothing lost to say
        after(lambda: drivers and any(periodic.glob("step_*.safetensors"))
              and workers_logged_after(-1) == {"0", "1"})
        kill_server_process()
        # the second loss only once both workers' updates after the restore, and what each said of
        # its loss, are in the log: the server's events reach the driver with its next snapshot, and
        # the second kill would take an event not yet fetched with it. So what is asserted below is
        # what happened, not how fast the reports flowed
        after(lambda: len(drivers[0].servers) == 2 and drivers[0].steps() >= kills[0] + 3_000
              and workers_logged_after(kills[0] + 1_000) == {"0", "1"}
              and workers_said_what_they_lost() == {"0", "1"})
        kill_server_process()

    def workers_said_what_they_lost():
        if not (tmp_path / "events.csv").is_file():
            return set()
        return {(r["detail"] or "").split()[1] for r in rows(tmp_path / "events.csv")
                if r["event"] == "updates_lost" and len((r["detail"] or "").split()) > 1}

    def workers_logged_after(step):
        if not (tmp_path / "updates.csv").is_file():
            return set()
        logged = rows(tmp_path / "updates.csv")  # the last row may be half written: skip it
        return {r["worker"] for r in logged
                if (r["global_step"] or "").isdigit() and int(r["global_step"]) > step}

    killer = threading.Thread(target=kill_twice, daemon=True)
    killer.start()
    with pytest.raises(WorkerError, match="parameter server was lost again"):
        model.learn(total_steps=10**7, run_dir=tmp_path)
    killer.join(timeout=5)
    events = rows(tmp_path / "events.csv")
    kinds = [e["event"] for e in events]
    assert kinds.count("server_restored") == 1 and kinds[-1] == "failed", kinds
    restored = next(e for e in events if e["event"] == "server_restored")
    assert "restored from the driver's snapshot of update" in restored["detail"]
    # Both workers reconnected and said what the loss cost them: at most what they sent since the
    # snapshot (taken every 0.1 s; 2 CartPole workers make ~1,000 updates/s on 2 cores).
    lost = [e for e in events if e["event"] == "updates_lost"]
    assert sorted(e["detail"].split()[1] for e in lost) == ["0", "1"], lost
    assert all(0 <= int(e["detail"].split("old one: ")[1].split()[0]) <= 1_000 for e in lost), lost
    # Training went on after the restore, and what it learned then is in the checkpoints.
    late = [r for r in rows(tmp_path / "updates.csv") if int(r["global_step"]) > kills[0] + 1_000]
    assert {r["worker"] for r in late} == {"0", "1"}
    final = load_checkpoint(tmp_path / "model.safetensors").counters["steps"]
    assert final >= kills[0] + 3_000
    for path in periodic.glob("step_*.safetensors"):
        assert load_checkpoint(path).counters["steps"] > 0, path


@pytest.mark.slow
@pytest.mark.parametrize("short", ["SERVER_START_TIMEOUT", "SERVER_TIMEOUT"])
def test_a_new_server_has_longer_to_give_its_first_answer_than_a_running_one(cluster, monkeypatch,
                                                                              tmp_path, short):
    # A new server's first answer waits for its process to start (seconds; more than a minute on a
    # busy machine); later ones only for the answer. Cut one limit to nothing: the run stops at the
    # wait that limit governs, with the checkpoint saved.
    from a3c.drivers.ray import driver

    monkeypatch.setattr(driver, short, 1e-4)
    model = A3C("CartPole-v1", backend="ray", workers=1, seed=0, verbose=0, eval_interval=0,
                final_eval_episodes=0, log_interval=0.2)
    with pytest.raises(WorkerError, match="parameter server did not answer for 0 s") as info:
        model.learn(total_steps=10**6, run_dir=tmp_path)
    assert ("after it was started" in str(info.value)) == (short == "SERVER_START_TIMEOUT")
    assert (tmp_path / "model.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "ray"])
def test_restarted_and_resumed_workers_draw_fresh_seeds_by_one_rule(backend, request, tmp_path):
    # ToySeedEcho's episodes score the seed their env drew; every worker raises at its env's 25th
    # step, after 2 updates of 10 steps, and is restarted: 3 incarnations make the 50 steps.
    if backend == "ray":
        request.getfixturevalue("cluster")
    options = dict(backend=backend, workers=1, n_envs=1, n_steps=10, seed=11, verbose=0, eval_interval=0,
                   final_eval_episodes=0, checkpoint_interval=0, log_interval=0.01, max_restarts=50)
    model = A3C("tests.toy_envs:ToySeedEcho-v0", **options)
    model.learn(total_steps=50, run_dir=tmp_path)
    config = model.config

    def seeds_logged():
        return {int(float(r["episode_return"])) for r in rows(tmp_path / "episodes.csv")}

    first_run = {learner_seed(config, 0, k, 0) for k in range(3)}
    assert seeds_logged() == first_run and 11 in first_run and len(first_run) == 3
    start = model.num_steps
    resumed = A3C.resume(tmp_path, verbose=0, trust_code=True, total_steps=30)
    resumed.learn()
    again = {learner_seed(config, 0, k, start) for k in range(2)}
    assert seeds_logged() == first_run | again and not first_run & again


@pytest.mark.slow
def test_a_local_instance_is_always_new_and_stays_on_loopback(cluster, a3c_cli, tmp_path, monkeypatch):
    import ray

    from a3c.drivers.ray.connection import LOOPBACK

    # This module's instance runs, and RAY_ADDRESS names it; Ray's address file names a cluster
    # that died: ray.init() would join one or the other, a run joins neither.
    with short_tempdir() as ray_tmp:
        with open(os.path.join(ray_tmp, "ray_current_cluster"), "w") as f:
            f.write(f"{LOOPBACK}:1")
        monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
        monkeypatch.setenv("RAY_ADDRESS", cluster)
        run = tmp_path / "run"
        result = a3c_cli("train", "tests.toy_envs:ToyIdentity-v0", "--backend", "ray", "--workers", "1",
                         "--total-steps", "400", "--eval-interval", "0", "--final-eval-episodes", "0",
                         "--run-dir", run, "--quiet")
    assert result.returncode == 0, result.stderr
    [where] = [e["detail"] for e in rows(run / "events.csv") if e["event"] == "ray"]
    assert where.startswith(f"started a new local Ray instance (GCS {LOOPBACK}:"), where
    assert cluster not in where and f"1 node(s) at {LOOPBACK}," in where
    # This module's instance, started the same way, reports loopback addresses only.
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {LOOPBACK}
    assert cluster.startswith(f"{LOOPBACK}:")


@pytest.mark.slow
def test_the_command_joins_a_cluster_by_address_and_eval_and_plot_work(cluster, a3c_cli, tmp_path):
    run = tmp_path / "run"
    result = a3c_cli("train", "CartPole-v1", "--backend", "ray", "--ray-address", cluster,
                     "--workers", "2", "--total-steps", "6000", "--eval-interval", "0",
                     "--final-eval-episodes", "2", "--run-dir", run, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "2 workers on Ray" in result.stderr
    assert load_checkpoint(run / "model.safetensors").counters["steps"] >= 6000
    evaluation = a3c_cli("eval", run, "--episodes", "2")
    assert evaluation.returncode == 0 and "mean return" in evaluation.stdout, evaluation.stderr
    plot = a3c_cli("plot", run, "-o", tmp_path / "curves.png")
    assert plot.returncode == 0 and (tmp_path / "curves.png").stat().st_size > 0, plot.stderr
