"""The `osipi` PySpark data source (`pip install osipi-dagster[spark]`): the only package that imports pyspark.

`register(spark)` once per session, then `spark.read.format("osipi")` / `spark.readStream.format("osipi")`.
"""

from osipi_dagster.spark.source import OSIPIDataSource, register

__all__ = ["OSIPIDataSource", "register"]
