"""compare: the parity verdict over the wrappers' outputs (pyarrow only, no orchestrator)."""
