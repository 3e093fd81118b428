"""Resume: a run continues from its newest checkpoint, bit for bit for A2C on classic control."""

import csv
import json
import pickle
import shutil
import signal

import pytest

import a3c
from a3c import A2C, A3C
from a3c.cli import main
from a3c.errors import CheckpointError, ConfigError
from a3c.run.checkpoint import load_checkpoint
from tests.integration.test_a2c import FAST, _assert_identical, _state
from tests.processes import Run, wait_for

K = 25  # updates before the interruption
BATCH = FAST["n_envs"] * FAST["n_steps"]


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a2c_resumed_after_a_crash_goes_on_bit_for_bit(tmp_path):
    # An uninterrupted run of 2K updates checkpoints at update K on its way. A run that crashed
    # right after that checkpoint (its directory holds only it) resumes and must end identical:
    # parameters, optimizer moments, observation and return statistics, each env's running return,
    # learning-rate schedule position.
    options = dict(FAST, seed=7, lr_schedule="linear", obs_norm=True, reward_norm=True,
                   checkpoint_interval=K * BATCH)
    full = A2C("CartPole-v1", verbose=0, **options).learn(total_steps=2 * K * BATCH,
                                                          run_dir=tmp_path / "full")
    crashed = tmp_path / "crashed" / "checkpoints"
    crashed.mkdir(parents=True)
    shutil.copy(tmp_path / "full" / "checkpoints" / f"step_{K * BATCH:012d}.safetensors", crashed)

    resumed = a3c.resume(tmp_path / "crashed", verbose=0)
    assert isinstance(resumed, A2C) and (resumed.num_steps, resumed.num_updates) == (K * BATCH, K)
    resumed.learn()  # on to the crashed run's own 2K updates
    assert resumed.num_updates == full.num_updates == 2 * K
    _assert_identical(_state(full), _state(resumed))
    assert resumed.policy.normalizer is not None and resumed.policy.return_normalizer is not None  # compared
    [event] = rows(tmp_path / "crashed" / "events.csv")
    assert event["event"] == "resumed" and "envs restored exactly" in event["detail"]


def test_a2c_stopped_at_update_k_and_resumed_equals_an_uninterrupted_run_and_appends_its_logs(tmp_path):
    options = dict(FAST, seed=3)
    full = A2C("CartPole-v1", verbose=0, **options).learn(total_steps=2 * K * BATCH,
                                                          run_dir=tmp_path / "full")
    run = tmp_path / "run"
    A2C("CartPole-v1", verbose=0, **options).learn(total_steps=K * BATCH, run_dir=run)
    before = {name: (run / name).read_text() for name in ("episodes.csv", "updates.csv")}

    resumed = A2C.resume(run, verbose=0, total_steps=K * BATCH)  # K more updates
    resumed.learn()
    _assert_identical(_state(full), _state(resumed))
    for name, text in before.items():  # appended, not overwritten: one header, the old rows first
        assert (run / name).read_text().startswith(text)
    updates = rows(run / "updates.csv")
    assert sum(int(u["updates"]) for u in updates) == 2 * K
    steps = [int(e["global_step"]) for e in rows(run / "episodes.csv")]
    assert steps == sorted(steps) and steps[-1] > K * BATCH
    times = [float(u["wall_time"]) for u in updates]
    assert times == sorted(times)  # wall_time goes on from the first part's training time
    [resume] = json.loads((run / "run.json").read_text())["resumes"]
    assert resume["steps"] == K * BATCH and resume["envs"] == "restored exactly"
    assert load_checkpoint(run).counters["steps"] == 2 * K * BATCH


def test_a_killed_run_resumes_from_its_newest_checkpoint_and_its_logs_are_cut_back(tmp_path):
    run_dir = tmp_path / "run"
    run = Run(tmp_path, "train", "CartPole-v1", "--algo", "a2c", "--n-envs", "4", "--n-steps", "5",
              "--total-steps", "100000000", "--eval-interval", "0", "--checkpoint-interval", "1000",
              "--log-interval", "0.05", "--run-dir", run_dir)
    try:
        assert wait_for(lambda: len(list((run_dir / "checkpoints").glob("step_*.safetensors"))) >= 3,
                        90), run.stderr
        run.signal(signal.SIGKILL)
        assert run.wait(10) == -signal.SIGKILL
    finally:
        run.kill_all()
    newest = max(int(p.stem[5:]) for p in (run_dir / "checkpoints").glob("step_*.safetensors"))
    assert not (run_dir / "model.safetensors").exists()

    model = a3c.resume(run_dir, verbose=0, total_steps=2000)
    assert model.num_steps == newest
    model.learn()
    assert model.num_steps == newest + 2000
    # rows the killed run logged after its last checkpoint are gone; the resumed run logged its own
    steps = [int(e["global_step"]) for e in rows(run_dir / "episodes.csv")]
    assert steps == sorted(steps) and steps[-1] > newest
    updates = rows(run_dir / "updates.csv")
    assert sum(int(u["updates"]) for u in updates) <= model.num_updates
    assert [int(u["global_step"]) for u in updates] == sorted(int(u["global_step"]) for u in updates)


# --- what resume refuses --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def a2c_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("a2c") / "run"
    A2C("CartPole-v1", verbose=0, **FAST).learn(total_steps=200, run_dir=run)
    return run


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("a3c: error:"), err
    return err


@pytest.mark.parametrize("args, words", [
    (["--resume", "{missing}"], ["no run directory at", "{missing}"]),
    (["--resume", "{empty}"], ["holds no checkpoint"]),
    (["Acrobot-v1", "--resume", "{run}"], ["CartPole-v1", "not Acrobot-v1"]),
    (["--resume", "{run}", "--algo", "a3c"], ["algo a2c, not a3c"]),
    (["--resume", "{run}", "--lr", "0.1"], ["lr cannot change when a run resumes"]),
    (["--resume", "{run}", "--n-envs", "2"], ["n_envs cannot change"]),
    (["--resume", "{run}"], ["already reached its 200 steps", "--total-steps"]),
    (["--resume", "{run}", "--config", "{empty}/c.json"], ["--config and --resume"]),
    (["--resume", "{run}", "--run-dir", "{empty}"], ["run_dir cannot change"]),
])
def test_bad_resumes_are_one_line_and_exit_status_2(a2c_run, tmp_path, capsys, args, words):
    paths = {"missing": tmp_path / "missing", "empty": tmp_path, "run": a2c_run}
    code = main(["train", *(a.format(**paths) for a in args), "--quiet"])
    assert code == 2
    error = _one_line_error(capsys)
    for word in words:
        assert word.format(**paths) in error


def test_resume_with_the_wrong_class_and_a_planted_pickle(a2c_run, tmp_path):
    with pytest.raises(CheckpointError, match="holds an A2C run, not A3C"):
        A3C.resume(a2c_run, verbose=0)
    with pytest.raises(ConfigError, match="gamma cannot change"):
        a3c.resume(a2c_run, verbose=0, gamma=0.5)

    class RunsCode:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "model.safetensors").write_bytes(pickle.dumps(RunsCode()))
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        a3c.resume(planted, verbose=0)
    assert not (tmp_path / "pwned").exists()


def test_env_state_that_does_not_fit_the_envs_is_a_checkpoint_error(a2c_run, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(a2c_run / "model.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        header = json.loads(f.metadata()["a3c"])
    assert len(header["resume"]["envs"]) == FAST["n_envs"]
    header["resume"]["envs"][2]["physics"]["state"] = {"dtype": "float64", "shape": [3],
                                                       "values": [0.0, 0.0, 0.0]}
    run = tmp_path / "run"
    run.mkdir()
    save_file(tensors, str(run / "model.safetensors"), metadata={"a3c": json.dumps(header)})
    model = a3c.resume(run, verbose=0, total_steps=100)
    with pytest.raises(CheckpointError, match="env 2: physics state of shape") as info:
        model.learn()
    assert str(run / "model.safetensors") in str(info.value)
