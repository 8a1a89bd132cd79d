"""`python -m osipi_dagster.cli` = the `osipi` console script."""

import sys

from osipi_dagster.cli.main import main

sys.exit(main())
