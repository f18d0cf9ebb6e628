"""State that survives restarts: the state file's format, and reading and writing it."""
