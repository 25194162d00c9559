"""Contract §7: every environment that writes Parquet resolves one pyarrow, pandas and numpy."""

import json
import subprocess
from pathlib import Path

import pytest

from parity.registry import WRAPPERS
from tests.conftest import PROJECT

ENVIRONMENTS = list(WRAPPERS)  # one environment per wrapper of the registry
WRITERS = ["pyarrow", "pandas", "numpy", "python-dateutil"]
PROBE = (
    "import json, platform; from importlib.metadata import version; "
    f"print(json.dumps({{'python': platform.python_version(), "
    f"**{{name: version(name) for name in {WRITERS!r}}}}}))"
)


def _versions(environment: str) -> dict[str, str]:
    python = PROJECT / ".venvs" / environment / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make setup` first")
    probe = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(probe.stdout)


def test_every_environment_resolves_the_same_writer_versions():
    seen = {environment: _versions(environment) for environment in ENVIRONMENTS}
    assert all(versions == seen["reference"] for versions in seen.values()), seen


def test_the_pins_are_the_ones_the_lock_file_records():
    lock = (PROJECT / "uv.lock").read_text()
    versions = _versions("reference")
    for name in WRITERS:
        assert f'name = "{name}"\nversion = "{versions[name]}"' in lock, name


def test_the_lock_records_only_public_registry_urls():
    lock = (PROJECT / "uv.lock").read_text()
    sources = {
        line.split('"')[1] for line in lock.splitlines() if line.startswith("source = { registry")
    }
    assert sources == {"https://pypi.org/simple"}
    assert "file://" not in lock and str(Path.home()) not in lock
