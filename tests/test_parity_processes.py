"""parity/processes.py: a child started with `tied_to_this_process()` does not outlive its
parent's SIGKILL, which no Python code in the parent sees."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import PROJECT

# The middle process: starts a long sleep (tied to it, or not), prints its pid, then waits.
MIDDLE = """
import subprocess, sys, time
from parity import processes
tied = sys.argv[1] == "tied"
child = subprocess.Popen(["sleep", "300"],
                         preexec_fn=processes.tied_to_this_process() if tied else None)
print(child.pid, flush=True)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its new parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def grandchild_after_killing_its_parent(mode: str, wait: float) -> tuple[int, bool]:
    middle = subprocess.Popen([sys.executable, "-c", MIDDLE, mode], cwd=PROJECT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    pid = int(middle.stdout.readline())
    os.kill(middle.pid, signal.SIGKILL)
    middle.wait()
    deadline = time.monotonic() + wait
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid, alive(pid)


def test_a_tied_child_dies_with_its_parent_and_an_untied_one_would_not():
    pid, survived = grandchild_after_killing_its_parent("tied", wait=10)
    assert not survived
    pid, survived = grandchild_after_killing_its_parent("untied", wait=1)  # the control
    try:
        assert survived
    finally:
        os.kill(pid, signal.SIGKILL)
