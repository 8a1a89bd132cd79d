"""Tests of the benchmark suite itself (run: .venv/bin/pytest bench/tests -q)."""
