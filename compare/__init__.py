"""compare: the parity verdict over the wrappers' outputs (pyarrow only, no orchestrator)."""

from parity.registry import WRAPPERS

# The project's wrappers, from the registry the Makefile's WRAPPERS reads too: what the gate
# expects unless told otherwise (`--expect`), and the only names it takes as a wrapper's outputs.
KNOWN_WRAPPERS = WRAPPERS

# The Makefile's MODE values besides local (contract §8): their outputs lie under <root>/<mode>/ in
# the local layout, and their wrappers are named `<wrapper>@<mode>`, e.g. `prefect@deployed`,
# so one verdict compares every wrapper in every mode, file by file.
MODES = ("deployed",)
