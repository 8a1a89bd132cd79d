"""Submit an asset backfill to the instance, as the UI's "Materialize partitions" does: the daemon's backfill loop
then queues its runs (one per the asset's backfill policy) and run retries apply while it is in progress.

    python -m osipi_dagster.devtools.backfill --asset pi/pi_timeseries --partitions K1,K2 [--tags JSON]

Prints the backfill id. `dagster job backfill` is not used: it submits the runs itself and marks its backfill
finished at once, and Dagster does not retry runs of a finished backfill. Run it with the code location's
environment (OSIPI_TAG_SHARDS etc.): the partition keys are those of the definitions it loads.
"""

from __future__ import annotations

import argparse
import json
import time

import dagster as dg
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.utils import make_new_backfill_id


def submit(asset: str, partitions: list[str], tags: dict[str, str]) -> str:
    from osipi_dagster.definitions import defs as load_defs

    graph = load_defs().resolve_asset_graph()
    key = dg.AssetKey.from_user_string(asset)
    with dg.DagsterInstance.get() as instance:
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id=make_new_backfill_id(),
            asset_graph=graph,
            partition_names=partitions,
            asset_selection=[key],
            backfill_timestamp=time.time(),
            tags=tags,
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config=None,
        )
        instance.add_backfill(backfill)
    return backfill.backfill_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--asset", required=True, help="asset key, e.g. pi/pi_timeseries")
    parser.add_argument("--partitions", required=True, help="comma-separated partition keys")
    parser.add_argument("--tags", default="{}", help="JSON object of run tags")
    args = parser.parse_args()
    print(submit(args.asset, args.partitions.split(","), json.loads(args.tags)))


if __name__ == "__main__":
    main()
