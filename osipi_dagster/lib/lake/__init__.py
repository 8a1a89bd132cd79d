"""Delta Lake storage for PI data: idempotent window replace, SCD2 history, upsert/append, maintenance.

No Dagster here; the Dagster layer (osipi_dagster/defs) calls Lake/DeltaTableRef and reports WriteResult.
"""

from .errors import LakeConflictError, LakeError, SchemaEvolutionError, TableNotFoundError, WindowError
from .lake import Lake
from .scd2 import SCD_COLUMNS
from .table import DeltaTableRef, WriteResult, as_of, extra_predicate_expr

__all__ = [
    "SCD_COLUMNS",
    "DeltaTableRef",
    "Lake",
    "LakeConflictError",
    "LakeError",
    "SchemaEvolutionError",
    "TableNotFoundError",
    "WindowError",
    "WriteResult",
    "as_of",
    "extra_predicate_expr",
]
