"""tests/file_queue.py, the sharing of test files between make test's two sessions: two real
pytest sessions over a folder of test files, started together on one queue, run every test
exactly once between them, each file whole in one session, the deployed file in the second."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT

FILES = {  # name: its tests, each of which records its node id then sleeps a little
    "test_a.py": 3, "test_b.py": 2, "test_c.py": 4, "test_d.py": 1, "test_e.py": 2,
}  # fmt: skip
TEST = """
import time, pytest
{mark}
@pytest.fixture(scope="module")
def once(request):
    with open({record!r}, "a") as out:
        out.write(f"setup {{request.module.__name__}} {{__import__('os').getpid()}}\\n")
    yield
@pytest.mark.parametrize("n", range({count}))
def test_it(once, n, request):
    with open({record!r}, "a") as out:
        out.write(f"{{request.node.nodeid}} {{__import__('os').getpid()}}\\n")
    time.sleep(0.5)
"""


def two_sessions(tests: Path, queue: Path) -> tuple[list[subprocess.Popen], list[str]]:
    """make test's two sessions over `tests`, on one queue: both must pass."""
    queue.mkdir()
    env = {**os.environ, "PARITY_TEST_QUEUE": str(queue), "PYTHONPATH": str(PROJECT)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "tests.file_queue", "-p",
               "no:cacheprovider", "--rootdir", str(tests), "-c", str(tests / "pytest.ini"),
               str(tests)]  # fmt: skip
    first = subprocess.Popen([*command, "-m", "not deployed"], env=env, cwd=PROJECT,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    second = subprocess.Popen(command, env={**env, "PARITY_TEST_QUEUE_END": "last"},
                              cwd=PROJECT, stdout=subprocess.PIPE, text=True)  # fmt: skip
    outputs = [first.communicate()[0], second.communicate()[0]]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    return [first, second], outputs


def test_two_sessions_share_the_files_and_run_each_test_once(tmp_path):
    tests, record = tmp_path / "suite", tmp_path / "record.txt"
    tests.mkdir()
    for name, count in {**FILES, "test_deployed.py": 2}.items():
        mark = "pytestmark = pytest.mark.deployed" if name == "test_deployed.py" else ""
        (tests / name).write_text(TEST.format(mark=mark, record=str(record), count=count))
    (tests / "pytest.ini").write_text("[pytest]\nmarkers =\n    deployed: the stack\n")
    (_, second), outputs = two_sessions(tests, tmp_path / "queue")

    runs = [line.split() for line in record.read_text().splitlines() if "::" in line]
    ran = [node for node, _ in runs]
    expected = [f"test_{name[5]}.py::test_it[{n}]" for name, count in FILES.items()
                for n in range(count)] + ["test_deployed.py::test_it[0]",
                                          "test_deployed.py::test_it[1]"]  # fmt: skip
    assert sorted(ran) == sorted(expected)  # each once
    session_of = {node.split("::")[0]: set() for node in ran}
    for node, pid in runs:
        session_of[node.split("::")[0]].add(pid)
    assert all(len(pids) == 1 for pids in session_of.values()), session_of  # a file is whole
    assert session_of["test_deployed.py"] == {str(second.pid)}
    assert len(set().union(*session_of.values())) == 2  # both sessions took local files
    setups = re.findall(r"^setup (\S+) ", record.read_text(), re.MULTILINE)
    assert sorted(setups) == sorted(name[:-3] for name in [*FILES, "test_deployed.py"])
    passed = [int(re.search(r"(\d+) passed", out).group(1)) for out in outputs]
    assert sum(passed) == sum(FILES.values()) + 2


TIMED = """
import os, time, pytest
pytestmark = [{marks}]
@pytest.mark.parametrize("n", range(3))
def test_it(n, request):
    began = time.monotonic()
    time.sleep(0.3)
    with open({record!r}, "a") as out:
        out.write(f"{{request.node.nodeid}} {{os.getpid()}} {{began}} {{time.monotonic()}}\\n")
"""


def test_an_exclusive_test_never_overlaps_an_orchestrator_test_of_the_other_session(tmp_path):
    tests, record = tmp_path / "suite", tmp_path / "record.txt"
    tests.mkdir()
    marks = {"test_a.py": "pytest.mark.orchestrators, pytest.mark.exclusive_state",
             "test_b.py": "pytest.mark.orchestrators", "test_c.py": "pytest.mark.orchestrators",
             "test_d.py": "pytest.mark.orchestrators, pytest.mark.exclusive_state",
             "test_e.py": "pytest.mark.orchestrators"}  # fmt: skip
    for name, mark in marks.items():
        (tests / name).write_text(TIMED.format(marks=mark, record=str(record)))
    (tests / "pytest.ini").write_text("[pytest]\nmarkers =\n    deployed: the stack\n"
                                      "    orchestrators: o\n    exclusive_state: x\n")
    two_sessions(tests, tmp_path / "queue")

    runs = [line.split() for line in record.read_text().splitlines()]
    assert len(runs) == 15
    assert len({pid for _, pid, _, _ in runs}) == 2  # both sessions ran tests
    exclusive = [run for run in runs if run[0].split("::")[0] in ("test_a.py", "test_d.py")]
    for node, pid, began, ended in exclusive:
        for other, other_pid, other_began, other_ended in runs:
            if other_pid != pid:  # the other session: not at the same time
                assert float(other_ended) <= float(began) or float(other_began) >= float(
                    ended), (node, other)
