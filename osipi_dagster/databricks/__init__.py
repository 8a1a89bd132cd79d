"""Running osipi extractions on Databricks (or any Spark): the idempotent Delta window write and the Dagster Pipes
entry point. Imports pyspark only inside functions, so the package imports without the `spark` extra."""
