"""keep_freed_memory: an Atari worker's updates reuse freed memory instead of faulting in fresh pages.

Each case runs in a fresh interpreter, as the setting lasts for the process's lifetime.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt is glibc's")

# What an A3C worker's update does with the a3c-conv torso (8 envs, T=5): five acting forward
# passes without autograd, then one learning pass over the 40 images, forward and backward.
# Prints the page faults (minor: no disk) of 20 updates after 5 to warm up.
UPDATES = """
import resource, sys, torch
from a3c.core.torsos import ConvTorso
from a3c.drivers.processes import keep_freed_memory
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    keep_freed_memory()
torch.manual_seed(0)
torso = ConvTorso((4, 84, 84), "a3c-conv")
obs = torch.randint(0, 256, (5, 8, 4, 84, 84), dtype=torch.uint8)
def update():
    with torch.no_grad():
        for x in obs:
            torso(x)
    torso(obs.flatten(0, 1)).sum().backward()
for _ in range(5):
    update()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    update()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", UPDATES, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def test_a_warmed_up_worker_updates_without_faulting_pages_in():
    # By default glibc hands some of the megabytes each update frees back to the OS, and they are
    # faulted in again: about a thousand 4 KiB pages an update. Kept, the same pages serve every
    # update; the heap may still grow now and then to a new peak (a few hundred pages).
    default, kept = _page_faults("default"), _page_faults("keep")
    assert default > 20 * 500, default
    assert kept < default / 10, (kept, default)
