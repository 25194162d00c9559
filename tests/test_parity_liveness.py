"""parity.liveness with real processes: a run whose driver is alive is left alone, one whose
driver was SIGKILLed is closed exactly once, and one that ended normally leaves nothing."""

import signal
import subprocess
import sys
from pathlib import Path

from parity import liveness
from tests.conftest import PROJECT

HOLDER = """
import sys, time
from pathlib import Path
from parity import liveness
with liveness.held(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


def _driver(folder: Path, key: str) -> subprocess.Popen:
    driver = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), key], cwd=PROJECT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert driver.stdout.readline() == "held\n"
    return driver


def test_a_live_run_is_left_alone_and_a_killed_one_is_closed_once(tmp_path):
    alive, killed = _driver(tmp_path, "alive"), _driver(tmp_path, "killed")
    try:
        closed: list[str] = []
        assert liveness.close_dead(tmp_path, closed.append) == []
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert liveness.close_dead(tmp_path, closed.append) == ["killed"]
        assert liveness.close_dead(tmp_path, closed.append) == []
        assert closed == ["killed"]
        assert sorted(path.name for path in tmp_path.iterdir()) == ["alive.lock"]
    finally:
        alive.kill()
        alive.wait()


def test_a_run_that_ends_leaves_no_lock_to_close(tmp_path):
    with liveness.held(tmp_path, "done"):
        assert [path.name for path in tmp_path.iterdir()] == ["done.lock"]
    assert list(tmp_path.iterdir()) == []
    assert liveness.close_dead(tmp_path, lambda key: None) == []
