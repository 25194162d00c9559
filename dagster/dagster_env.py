"""Dagster's settings, applied when this module is imported (parity/bootstrap.py says why).

Dagster reads $DAGSTER_HOME when it opens its instance, the runtime reads the staging root
when a run stages its results; the modules of dagster/ that import Dagster still import this
first, as the other orchestrators' do, so no import can come before them. The instance and
the staging area are the project's (.state/), each only where the caller has not set it (a
test's own home, the deployed stack's in dagster/deployed/supervisord.conf).
"""

from pathlib import Path

from parity import bootstrap

STATE = Path(__file__).resolve().parent.parent / ".state"

bootstrap.apply({"DAGSTER_HOME": STATE / "dagster", "ETL_STAGING_ROOT": STATE / "staging"})
