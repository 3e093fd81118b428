"""A writer killed at random points, many times, never costs the previous checkpoint."""

import os
import random
import signal
import time

import torch

from a3c.drivers.processes import worker_context
from a3c.run.checkpoint import latest_checkpoint, load_checkpoint, read_counters, remove_stale_temporaries
from tests.checkpoint_writer import write_forever
from tests.processes import wait_for

KILLS = 32


def temporaries(root):
    return [*root.glob(".*.tmp*"), *(root / "checkpoints").glob(".*.tmp*")]


def assert_whole(ckpt, i):
    """Every tensor of save number i holds i: the file is one save, not a mix or a torn write."""
    for name, tensor in [*ckpt.model_state.items(), *ckpt.optimizer_state.items()]:
        assert torch.all(tensor == i), f"{name} is not all {i}"


def test_a_writer_killed_at_random_points_leaves_the_previous_checkpoint_intact(tmp_path):
    ctx = worker_context()  # a forkserver child starts in milliseconds: many kills stay quick
    rng = random.Random(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    saved, torn = 0, 0
    try:
        for k in range(KILLS):
            ready = ctx.Event()
            writer = ctx.Process(target=write_forever, args=(str(tmp_path), ready), daemon=True)
            writer.start()
            assert ready.wait(60), "the writer never finished a first save"
            if k % 2:  # anywhere in a few saves' time: serializing, writing, renaming, pruning
                time.sleep(rng.uniform(0.0, 0.2))
            else:  # within a write: once a temporary file appears, a random moment later
                wait_for(lambda: temporaries(tmp_path), 5, interval=0.0005)
                time.sleep(rng.uniform(0.0, 0.01))
            os.kill(writer.pid, signal.SIGKILL)
            writer.join()
            torn += bool(temporaries(tmp_path))  # killed mid-write: its temporary file is left

            ckpt = load_checkpoint(tmp_path / "model.safetensors")
            i = ckpt.counters["steps"]
            assert i > saved  # at least the save that made the writer ready
            assert_whole(ckpt, i)
            saved = i
            # the periodic ones: the last K (one more if the kill came between write and prune),
            # the newest of save i or i - 1 (killed between the two writes), each one whole
            periodic = sorted((tmp_path / "checkpoints").glob("step_*.safetensors"))
            assert 1 <= len(periodic) <= 4
            for path in periodic:
                counters = read_counters(path)
                assert counters is not None, f"{path.name} is not a readable checkpoint"
                assert path.name == f"step_{counters['steps']:012d}.safetensors"
            newest = load_checkpoint(periodic[-1])
            assert newest.counters["steps"] in (i - 1, i)
            assert_whole(newest, newest.counters["steps"])
            assert latest_checkpoint(tmp_path) == tmp_path / "model.safetensors"
    finally:
        torch.set_num_threads(threads)
    assert torn >= KILLS // 4, f"only {torn} of {KILLS} kills came in the middle of a write"
    # a dead writer's temporary files are never read, and the next writer's save removes them
    leftovers = temporaries(tmp_path)
    removed = remove_stale_temporaries(tmp_path) + remove_stale_temporaries(tmp_path / "checkpoints")
    assert sorted(removed) == sorted(leftovers) and not temporaries(tmp_path)
