"""Development tools for tests, the demo and benchmarks (no Dagster imports): a throwaway PostgreSQL."""
