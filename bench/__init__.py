"""Benchmarks of osipi-dagster (issue 8): `make bench` runs bench/run_all.py; results land in docs/performance.md.

Each module owns one part: common (emulators, figures), scenarios, dagster_run (child process), report.
"""
