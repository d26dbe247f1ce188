"""The local try-out's test: the README's commands from a fresh clone (a phase of its own in
run_all.sh, after the rehearsal, since its teardown removes the box image the rehearsal uses)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.engine_fixtures import engine_home  # noqa: F401  (a fixture)
from tests.rehearsal import figures


def pytest_terminal_summary(terminalreporter):
    figures.write_summary(terminalreporter, "local try-out figures")
