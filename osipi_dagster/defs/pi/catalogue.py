"""The PI catalogue assets: the point catalogue and the AF hierarchy, daily SCD2 snapshots in Delta."""

import dagster as dg

from osipi_dagster.defs.pi import checks
from osipi_dagster.defs.pi.dimension import dimension_asset
from osipi_dagster.defs.pi.names import ELEMENTS_KEY
from osipi_dagster.defs.pi.site import DEFAULT_SITE, Site
from osipi_dagster.lib.landing.catalogue import attributes_snapshot, elements_snapshot, points_snapshot
from osipi_dagster.lib.landing.tables import ATTRIBUTES_TABLE, ELEMENTS_TABLE, POINTS_TABLE


def catalogue_assets(site: Site = DEFAULT_SITE) -> list[dg.AssetsDefinition]:
    """The site's point catalogue, AF elements and AF attributes."""
    pi_points = dimension_asset(
        POINTS_TABLE,
        read=lambda client, settings, lake: points_snapshot(client, settings.data_servers),
        check=checks.POINTS_UNIQUE_WEB_ID,
        evaluate=checks.unique_web_id,
        description="PI point catalogue of every configured data server (PI_DATA_SERVERS), SCD2 history.",
        site=site,
    )

    af_elements = dimension_asset(
        ELEMENTS_TABLE,
        read=lambda client, settings, lake: elements_snapshot(client, settings.af_databases),
        check=checks.ELEMENTS_TREE_COMPLETE,
        evaluate=checks.tree_complete,
        description="AF element hierarchy of every configured AF database (PI_AF_DATABASES), SCD2 history.",
        site=site,
    )

    af_attributes = dimension_asset(
        ATTRIBUTES_TABLE,
        read=lambda client, settings, lake: attributes_snapshot(client, lake),
        check=checks.ATTRIBUTES_POINTS_RESOLVED,
        evaluate=checks.points_resolved,
        deps=[ELEMENTS_KEY],
        description="Attributes of the current AF elements, PI point data references resolved, SCD2 history.",
        site=site,
    )
    return [pi_points, af_elements, af_attributes]


pi_points, af_elements, af_attributes = catalogue_assets()
