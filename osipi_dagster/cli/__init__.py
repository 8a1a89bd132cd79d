"""Operator tools, the `osipi` console script: `osipi check` and `osipi browse` (Dagster-free; see main.py)."""
