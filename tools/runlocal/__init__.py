"""The four services wired together in one process, from source: scripts/run-local and the tests."""
