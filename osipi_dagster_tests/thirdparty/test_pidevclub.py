"""The PI Developers Club client (osisoft-pidevclub-piwebapi, generated from AVEVA's swagger) against mock_pi.

Every model the client builds is turned back into PI Web API JSON through the model's own attribute map and compared,
field by field, with a raw httpx read of the same resource: what the client understood is what the server sent, and
nothing the client models was lost. Configured for Basic as its README shows (`useKerberos=False`, username/password).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from osisoft.pidevclub.piwebapi import models
from osisoft.pidevclub.piwebapi.pi_web_api_client import PIWebApiClient
from osisoft.pidevclub.piwebapi.rest import ApiException

from osipi_dagster_tests.emulator import Emulator
from osipi_dagster_tests.thirdparty.raw import END, PASSWORD, SERVER, START, USERNAME, RawPI, emulator_args

# The client's pandas helpers use DataFrame.rename(inplace=True), deprecated in pandas 3.1.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.rename")
TAG = "SINUSOID"
TAG_PATH = f"\\\\{SERVER}\\{TAG}"


def pi_json(model: Any) -> Any:
    """A client model back in PI Web API JSON names (through its attribute_map); fields it left None dropped."""
    if hasattr(model, "attribute_map"):
        return {
            name: pi_json(getattr(model, attr))
            for attr, name in model.attribute_map.items()
            if getattr(model, attr) is not None
        }
    if isinstance(model, list):
        return [pi_json(m) for m in model]
    if isinstance(model, dict):
        return {k: pi_json(v) for k, v in model.items()}
    return model


def differences(model: Any, raw: Any, where: str = "$") -> Iterator[str]:
    """Where a client model and the raw JSON disagree; fields the 2017 R2 model does not know are not compared."""
    if hasattr(model, "attribute_map"):
        if not isinstance(raw, dict):
            yield f"{where}: client has an object, server sent {raw!r}"
            return
        for attr, name in model.attribute_map.items():
            got = getattr(model, attr)
            if name in raw:
                yield from differences(got, raw[name], f"{where}.{name}")
            elif got is not None:
                yield f"{where}.{name}: client has {got!r}, server sent nothing"
    elif isinstance(model, list) and isinstance(raw, list):
        if len(model) != len(raw):
            yield f"{where}: client has {len(model)} items, server sent {len(raw)}"
        for i, (m, r) in enumerate(zip(model, raw, strict=False)):
            yield from differences(m, r, f"{where}[{i}]")
    elif isinstance(model, dict) and isinstance(raw, dict):
        if set(model) != set(raw):
            yield f"{where}: client keys {sorted(model)} != server keys {sorted(raw)}"
        for key in set(model) & set(raw):
            yield from differences(model[key], raw[key], f"{where}.{key}")
    elif (
        isinstance(model, str)
        and isinstance(raw, str)
        and model.startswith("http")
        and raw.startswith("http")
    ):
        if link(model) != link(raw):
            yield f"{where}: client has link {model!r}, server sent {raw!r}"
    elif model != raw or type(model) is not type(raw):
        yield f"{where}: client has {model!r}, server sent {raw!r}"


def link(url: str) -> tuple[str, list[tuple[str, str]]]:
    """A link's path and query, order and case aside: PI echoes each request's own query string in its links, and
    the client orders (and spells booleans in) its parameters its own way."""
    parts = urlsplit(url)
    return parts.path.lower(), sorted((k.lower(), v.lower()) for k, v in parse_qsl(parts.query))


def assert_same(model: Any, raw: Any) -> None:
    found = list(differences(model, raw))
    assert not found, found[:10]
    assert pi_json(model), "an empty model compares equal to anything"


@pytest.fixture(scope="module")
def pdc(pi: Emulator) -> PIWebApiClient:
    return PIWebApiClient(pi.api, useKerberos=False, username=USERNAME, password=PASSWORD, verifySsl=True)


@pytest.fixture(scope="module")
def point(raw: RawPI) -> dict[str, Any]:
    return raw.point(TAG)


@pytest.fixture(scope="module")
def database(raw: RawPI) -> dict[str, Any]:
    server = raw.get("/assetservers")["Items"][0]
    return raw.get(server["Links"]["Databases"])["Items"][0]


@pytest.fixture(scope="module")
def pump(raw: RawPI, database: dict[str, Any]) -> dict[str, Any]:
    """An element whose attributes include PI Point data references (on both data servers) and static values."""
    return raw.get(
        database["Links"]["Elements"], searchFullHierarchy="true", templateName="Pump", maxCount=1
    )["Items"][0]


@pytest.fixture(scope="module")
def pi_point_attribute(raw: RawPI, pump: dict[str, Any]) -> dict[str, Any]:
    return next(
        a for a in raw.get(pump["Links"]["Attributes"])["Items"] if a["DataReferencePlugIn"] == "PI Point"
    )


# System and home


def test_home_and_system(pdc: PIWebApiClient, raw: RawPI) -> None:
    assert_same(pdc.home.get(), raw.get("/"))
    assert_same(pdc.system.landing(), raw.get("/system"))
    assert_same(pdc.system.status(), raw.get("/system/status"))
    versions = pdc.system.versions()
    expected = raw.get("/system/versions")
    assert set(versions) == set(expected)
    for name, version in versions.items():
        assert_same(version, expected[name])
    user = pdc.system.user_info()
    assert_same(user, raw.get("/system/userinfo"))
    assert (user.name, user.identity_type, user.is_authenticated) == (USERNAME, "Basic", True)


def test_wrong_password_is_refused(pi: Emulator) -> None:
    client = PIWebApiClient(pi.api, useKerberos=False, username=USERNAME, password="wrong", verifySsl=True)
    with pytest.raises(ApiException) as refused:
        client.dataServer.list()
    assert refused.value.status == 401


# Data servers, enumeration sets, points


def test_data_servers_listed_by_name_path_and_web_id(pdc: PIWebApiClient, raw: RawPI) -> None:
    listed = raw.get("/dataservers")
    assert_same(pdc.dataServer.list(), listed)
    for server in listed["Items"]:
        assert_same(pdc.dataServer.get_by_name(server["Name"]), server)
        assert_same(pdc.dataServer.get_by_path(server["Path"]), server)
        assert_same(pdc.dataServer.get(server["WebId"]), server)
    with pytest.raises(ApiException) as unknown:
        pdc.dataServer.get_by_name("PISRV99")
    assert unknown.value.status == 404


def test_points_of_a_data_server_by_name_filter_and_page(pdc: PIWebApiClient, raw: RawPI) -> None:
    server = raw.server()
    url = server["Links"]["Points"]
    assert_same(
        pdc.dataServer.get_points(server["WebId"], name_filter="U310-*"), raw.get(url, nameFilter="U310-*")
    )
    page = pdc.dataServer.get_points(server["WebId"], max_count=7, start_index=20)
    assert len(page.items) == 7
    assert_same(page, raw.get(url, maxCount=7, startIndex=20))


def test_data_server_licenses(pdc: PIWebApiClient, raw: RawPI) -> None:
    server = raw.server()
    for module in (
        "pibasess.MaxAggregatePointModuleCount",
        "pibasess.MaxPointCount",
        "pibasess.MaxModuleCount",
    ):
        license_ = pdc.dataServer.get_license(server["WebId"], module)
        assert_same(license_, raw.get(f"/dataservers/{server['WebId']}/license", module=module))
        assert license_.name == module
    points = pdc.dataServer.get_license(server["WebId"], "pibasess.MaxPointCount")
    assert int(points.amount_used) == len(raw.points())
    with pytest.raises(ApiException) as unknown:
        pdc.dataServer.get_license(server["WebId"], "Component.Module")
    assert unknown.value.status == 404


def test_enumeration_sets_and_values(pdc: PIWebApiClient, raw: RawPI) -> None:
    server = raw.server()
    sets = raw.get(server["Links"]["EnumerationSets"])
    assert_same(pdc.dataServer.get_enumeration_sets(server["WebId"]), sets)
    assert sets["Items"]
    for enumeration_set in sets["Items"]:
        assert_same(
            pdc.enumerationSet.get_values(enumeration_set["WebId"]),
            raw.get(enumeration_set["Links"]["Values"]),
        )


def test_point_by_path_web_id_and_several_at_once(
    pdc: PIWebApiClient, raw: RawPI, point: dict[str, Any]
) -> None:
    assert_same(pdc.point.get_by_path(TAG_PATH), point)
    assert_same(pdc.point.get(point["WebId"]), point)
    other = raw.point("Tank 12 (North) Level")
    several = pdc.point.get_multiple(path=[TAG_PATH, other["Path"]])
    assert_same(several, raw.get("/points/multiple", path=[TAG_PATH, other["Path"]]))
    assert [item.object.web_id for item in several.items] == [point["WebId"], other["WebId"]]
    assert_same(
        pdc.point.get_multiple(web_id=[other["WebId"]]), raw.get("/points/multiple", webId=other["WebId"])
    )


@pytest.mark.parametrize(
    ("query", "name_filter"),
    [("name:U310-*", "U310-*"), ("tag:SINUSOID", "SINUSOID"), ("Tank\\ 12*", "Tank 12*"), ("*.ST", "*.ST")],
)
def test_point_search_finds_what_the_name_filter_lists(
    pdc: PIWebApiClient, raw: RawPI, query: str, name_filter: str
) -> None:
    server = raw.server()
    found = pdc.point.search(server["WebId"], query)
    expected = raw.points(nameFilter=name_filter)
    assert expected
    assert sorted(p.web_id for p in found.items) == sorted(p["WebId"] for p in expected)
    assert_same(found, raw.get("/points/search", dataServerWebId=server["WebId"], query=query))


def test_point_attributes(pdc: PIWebApiClient, raw: RawPI, point: dict[str, Any]) -> None:
    attributes = raw.get(point["Links"]["Attributes"])
    assert_same(pdc.point.get_attributes(point["WebId"]), attributes)
    descriptor = next(a for a in attributes["Items"] if a["Name"] == "descriptor")
    assert descriptor["Value"] == point["Descriptor"]
    assert_same(pdc.point.get_attribute_by_name("descriptor", point["WebId"]), descriptor)


def test_web_id_helper_reads_and_writes_the_servers_web_ids(
    pdc: PIWebApiClient, raw: RawPI, point: dict[str, Any]
) -> None:
    server = raw.server()
    info = pdc.webIdHelper.get_web_id_info(point["WebId"])
    assert (info.web_id_type.value, info.marker, info.point_id) == ("Full", "DP", point["Id"])
    assert info.server_id == server["Id"]
    assert info.path == TAG_PATH[2:].upper()
    path_only = pdc.webIdHelper.generate_web_id_by_path(TAG_PATH, models.PIPoint, None)
    assert path_only.startswith("P1DP")
    assert_same(pdc.point.get(path_only), point)
    server_path_only = pdc.webIdHelper.generate_web_id_by_path(server["Path"], models.PIDataServer, None)
    assert_same(pdc.dataServer.get(server_path_only), server)


# Streams


def test_stream_reads(pdc: PIWebApiClient, raw: RawPI, point: dict[str, Any]) -> None:
    web_id = point["WebId"]
    url = f"/streams/{web_id}"
    window = {"startTime": START, "endTime": END}
    recorded = pdc.stream.get_recorded(web_id, start_time=START, end_time=END)
    assert len(recorded.items) > 20
    assert_same(recorded, raw.get(f"{url}/recorded", **window))
    assert_same(
        pdc.stream.get_recorded(web_id, start_time=START, end_time=END, max_count=5, boundary_type="Outside"),
        raw.get(f"{url}/recorded", **window, maxCount=5, boundaryType="Outside"),
    )
    assert_same(
        pdc.stream.get_recorded(
            web_id, start_time=START, end_time=END, selected_fields="Items.Timestamp;Items.Value"
        ),
        raw.get(f"{url}/recorded", **window, selectedFields="Items.Timestamp;Items.Value"),
    )
    assert_same(
        pdc.stream.get_interpolated(web_id, start_time=START, end_time=END, interval="10m"),
        raw.get(f"{url}/interpolated", **window, interval="10m"),
    )
    assert_same(
        pdc.stream.get_plot(web_id, start_time=START, end_time=END, intervals=6),
        raw.get(f"{url}/plot", **window, intervals=6),
    )
    assert_same(pdc.stream.get_value(web_id), raw.get(f"{url}/value"))
    assert_same(pdc.stream.get_value(web_id, time=START), raw.get(f"{url}/value", time=START))
    assert_same(pdc.stream.get_end(web_id), raw.get(f"{url}/end"))
    for mode in ["Before", "AtOrBefore", "After", "AtOrAfter", "Exact"]:
        expected = raw.http.get(f"{url}/recordedattime", params={"time": START, "retrievalMode": mode})
        if expected.status_code == 200:
            assert_same(pdc.stream.get_recorded_at_time(web_id, START, retrieval_mode=mode), expected.json())
        else:
            with pytest.raises(ApiException) as refused:
                pdc.stream.get_recorded_at_time(web_id, START, retrieval_mode=mode)
            assert refused.value.status == expected.status_code


AT_TIMES = ["2024-05-01T10:00:00Z", "2024-05-01T10:30:00Z", "2024-05-01T10:15:00Z", "2024-05-01T10:15:00Z"]


def test_stream_reads_at_times(pdc: PIWebApiClient, raw: RawPI, point: dict[str, Any]) -> None:
    web_id = point["WebId"]
    url = f"/streams/{web_id}"
    interpolated = pdc.stream.get_interpolated_at_times(web_id, time=AT_TIMES)
    assert [i.timestamp for i in interpolated.items] == sorted(AT_TIMES)
    assert_same(interpolated, raw.get(f"{url}/interpolatedattimes", time=AT_TIMES))
    assert_same(
        pdc.stream.get_interpolated_at_times(web_id, time=AT_TIMES, sort_order="Descending"),
        raw.get(f"{url}/interpolatedattimes", time=AT_TIMES, sortOrder="Descending"),
    )
    for mode in ["Auto", "Before", "AtOrAfter", "Exact"]:
        recorded = pdc.stream.get_recorded_at_times(web_id, time=AT_TIMES, retrieval_mode=mode)
        assert len(recorded.items) == len(AT_TIMES)
        assert_same(recorded, raw.get(f"{url}/recordedattimes", time=AT_TIMES, retrievalMode=mode))
        for item, t in zip(recorded.items, sorted(AT_TIMES), strict=True):
            assert_same(item, raw.get(f"{url}/recordedattime", time=t, retrievalMode=mode))


@pytest.mark.parametrize(
    "params",
    [
        {"summary_type": ["Average", "Minimum", "Maximum", "Total", "Range", "StdDev", "PopulationStdDev"]},
        {"summary_type": ["Count", "Average", "Total"], "calculation_basis": "EventWeighted"},
        {"summary_type": ["Average", "Maximum"], "summary_duration": "15m"},
        {
            "summary_type": ["Count"],
            "calculation_basis": "EventWeightedExcludeMostRecentEvent",
            "time_type": "MostRecentTime",
        },
    ],
)
def test_stream_summaries(
    pdc: PIWebApiClient, raw: RawPI, point: dict[str, Any], params: dict[str, Any]
) -> None:
    query = {"".join(w.title() if i else w for i, w in enumerate(k.split("_"))): v for k, v in params.items()}
    expected = raw.get(f"/streams/{point['WebId']}/summary", startTime=START, endTime=END, **query)
    assert_same(pdc.stream.get_summary(point["WebId"], start_time=START, end_time=END, **params), expected)


def test_stream_writes_land_in_the_archive(emulator_factory: Callable[..., Emulator]) -> None:
    """update_value and update_values on a private emulator; raw reads see exactly what was written."""
    private = emulator_factory(*emulator_args(tags=20))
    client = PIWebApiClient(
        private.api, useKerberos=False, username=USERNAME, password=PASSWORD, verifySsl=True
    )
    with RawPI(private.api) as writable:
        web_id = writable.point(TAG)["WebId"]
        at = datetime(2024, 5, 1, 11, 30, 0, 250000, tzinfo=UTC)
        stamps = [at + timedelta(seconds=s) for s in (1, 2, 3)]
        client.stream.update_value(web_id, models.PITimedValue(timestamp=at.isoformat(), value=1234.5))
        client.stream.update_values(
            web_id,
            [models.PITimedValue(timestamp=t.isoformat(), value=float(i)) for i, t in enumerate(stamps)],
        )
        items = writable.get(
            f"/streams/{web_id}/recorded",
            startTime=at.isoformat(),
            endTime=stamps[-1].isoformat(),
            selectedFields="Items.Timestamp;Items.Value",
        )["Items"]
    assert items == [
        {"Timestamp": "2024-05-01T11:30:00.25Z", "Value": 1234.5},
        {"Timestamp": "2024-05-01T11:30:01.25Z", "Value": 0.0},
        {"Timestamp": "2024-05-01T11:30:02.25Z", "Value": 1.0},
        {"Timestamp": "2024-05-01T11:30:03.25Z", "Value": 2.0},
    ]


# Stream sets


def test_ad_hoc_stream_sets(pdc: PIWebApiClient, raw: RawPI, point: dict[str, Any]) -> None:
    web_ids = [
        point["WebId"],
        raw.point("Reactor R-101 Mode")["WebId"],
        raw.point("U200-JI00018.PV")["WebId"],
    ]
    window = {"startTime": START, "endTime": END, "webId": web_ids}
    assert_same(
        pdc.streamSet.get_recorded_ad_hoc(web_ids, start_time=START, end_time=END, max_count=50),
        raw.get("/streamsets/recorded", **window, maxCount=50),
    )
    assert_same(
        pdc.streamSet.get_interpolated_ad_hoc(web_ids, start_time=START, end_time=END, interval="20m"),
        raw.get("/streamsets/interpolated", **window, interval="20m"),
    )
    assert_same(
        pdc.streamSet.get_plot_ad_hoc(web_ids, start_time=START, end_time=END, intervals=4),
        raw.get("/streamsets/plot", **window, intervals=4),
    )
    numeric = [web_ids[0], web_ids[2]]
    assert_same(
        pdc.streamSet.get_summaries_ad_hoc(
            numeric,
            start_time=START,
            end_time=END,
            summary_type=["Average", "Count"],
            calculation_basis="EventWeighted",
        ),
        raw.get(
            "/streamsets/summary",
            startTime=START,
            endTime=END,
            webId=numeric,
            summaryType=["Average", "Count"],
            calculationBasis="EventWeighted",
        ),
    )
    assert_same(pdc.streamSet.get_values_ad_hoc(web_ids), raw.get("/streamsets/value", webId=web_ids))
    assert_same(
        pdc.streamSet.get_values_ad_hoc(web_ids, time=START),
        raw.get("/streamsets/value", webId=web_ids, time=START),
    )
    assert_same(pdc.streamSet.get_end_ad_hoc(web_ids), raw.get("/streamsets/end", webId=web_ids))
    assert_same(
        pdc.streamSet.get_recorded_at_time_ad_hoc(time=START, web_id=web_ids, retrieval_mode="AtOrBefore"),
        raw.get("/streamsets/recordedattime", webId=web_ids, time=START, retrievalMode="AtOrBefore"),
    )
    at_times = pdc.streamSet.get_interpolated_at_times_ad_hoc(AT_TIMES, web_ids, sort_order="Descending")
    assert [s.web_id for s in at_times.items] == web_ids
    assert_same(
        at_times,
        raw.get("/streamsets/interpolatedattimes", webId=web_ids, time=AT_TIMES, sortOrder="Descending"),
    )
    assert_same(
        pdc.streamSet.get_recorded_at_times_ad_hoc(AT_TIMES, web_ids, retrieval_mode="After"),
        raw.get("/streamsets/recordedattimes", webId=web_ids, time=AT_TIMES, retrievalMode="After"),
    )


def test_stream_sets_of_an_element(pdc: PIWebApiClient, raw: RawPI, pump: dict[str, Any]) -> None:
    web_id = pump["WebId"]
    url = f"/streamsets/{web_id}"
    window = {"startTime": START, "endTime": END}
    values = pdc.streamSet.get_values(web_id)
    assert len(values.items) >= 3
    assert_same(values, raw.get(f"{url}/value"))
    assert_same(pdc.streamSet.get_end(web_id), raw.get(f"{url}/end"))
    assert_same(
        pdc.streamSet.get_recorded(web_id, start_time=START, end_time=END),
        raw.get(f"{url}/recorded", **window),
    )
    assert_same(
        pdc.streamSet.get_interpolated(web_id, start_time=START, end_time=END, interval="30m"),
        raw.get(f"{url}/interpolated", **window, interval="30m"),
    )
    assert_same(
        pdc.streamSet.get_plot(web_id, start_time=START, end_time=END, intervals=3),
        raw.get(f"{url}/plot", **window, intervals=3),
    )
    assert_same(
        pdc.streamSet.get_summaries(web_id, start_time=START, end_time=END, summary_type=["Average"]),
        raw.get(f"{url}/summary", **window, summaryType="Average"),
    )
    assert_same(
        pdc.streamSet.get_interpolated_at_times(web_id, AT_TIMES),
        raw.get(f"{url}/interpolatedattimes", time=AT_TIMES),
    )
    assert_same(
        pdc.streamSet.get_recorded_at_times(web_id, AT_TIMES, retrieval_mode="Before", name_filter="*e*"),
        raw.get(f"{url}/recordedattimes", time=AT_TIMES, retrievalMode="Before", nameFilter="*e*"),
    )
    assert_same(
        pdc.streamSet.get_recorded_at_time(web_id, START, retrieval_mode="AtOrAfter"),
        raw.get(f"{url}/recordedattime", time=START, retrievalMode="AtOrAfter"),
    )


# The pandas helpers (client.data): PI and AF paths to data frames


def frame_rows(frame: Any, suffix: str = "") -> list[tuple[str, Any, bool]]:
    return list(
        zip(frame["Timestamp" + suffix], frame["Value" + suffix], frame["Good" + suffix], strict=True)
    )


def raw_rows(body: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    return [(i["Timestamp"], i["Value"], i["Good"]) for i in body["Items"]]


def test_data_frames_of_pi_and_af_paths(
    pdc: PIWebApiClient, raw: RawPI, point: dict[str, Any], pi_point_attribute: dict[str, Any]
) -> None:
    af_path = "af:" + pi_point_attribute["Path"]
    window = {"startTime": START, "endTime": END}
    for path, web_id in [("pi:" + TAG_PATH, point["WebId"]), (af_path, pi_point_attribute["WebId"])]:
        url = f"/streams/{web_id}"
        recorded = pdc.data.get_recorded_values(path, start_time=START, end_time=END)
        assert frame_rows(recorded) == raw_rows(raw.get(f"{url}/recorded", **window))
        interpolated = pdc.data.get_interpolated_values(path, start_time=START, end_time=END, interval="10m")
        assert frame_rows(interpolated) == raw_rows(raw.get(f"{url}/interpolated", **window, interval="10m"))
        plot = pdc.data.get_plot_values(path, start_time=START, end_time=END, intervals=5)
        assert frame_rows(plot) == raw_rows(raw.get(f"{url}/plot", **window, intervals=5))
    paths = ["pi:" + TAG_PATH, af_path]
    web_ids = [point["WebId"], pi_point_attribute["WebId"]]
    by_path = pdc.data.get_multiple_recorded_values(paths, start_time=START, end_time=END)
    for path, web_id in zip(paths, web_ids, strict=True):
        assert frame_rows(by_path[path]) == raw_rows(raw.get(f"/streams/{web_id}/recorded", **window))
    side_by_side = pdc.data.get_multiple_interpolated_values(
        paths, start_time=START, end_time=END, interval="15m"
    )
    for i, web_id in enumerate(web_ids, start=1):
        expected = raw_rows(raw.get(f"/streams/{web_id}/interpolated", **window, interval="15m"))
        assert frame_rows(side_by_side, str(i)) == expected


# AF: asset servers, databases, elements, attributes


def test_asset_servers_and_databases(pdc: PIWebApiClient, raw: RawPI) -> None:
    listed = raw.get("/assetservers")
    assert_same(pdc.assetServer.list(), listed)
    server = listed["Items"][0]
    assert_same(pdc.assetServer.get_by_name(server["Name"]), server)
    assert_same(pdc.assetServer.get_by_path(server["Path"]), server)
    assert_same(pdc.assetServer.get(server["WebId"]), server)
    databases = raw.get(server["Links"]["Databases"])
    assert_same(pdc.assetServer.get_databases(server["WebId"]), databases)
    for database in databases["Items"]:
        assert_same(pdc.assetDatabase.get(database["WebId"]), database)
        assert_same(pdc.assetDatabase.get_by_path(database["Path"]), database)
    with pytest.raises(ApiException) as unknown:
        pdc.assetServer.get_by_name("NOAF")
    assert unknown.value.status == 404


def test_elements_templates_and_search(pdc: PIWebApiClient, raw: RawPI, database: dict[str, Any]) -> None:
    web_id, url = database["WebId"], database["Links"]["Elements"]
    assert_same(pdc.assetDatabase.get_elements(web_id), raw.get(url))
    pumps = pdc.assetDatabase.get_elements(
        web_id, search_full_hierarchy=True, template_name="Pump", max_count=20
    )
    assert len(pumps.items) > 1
    assert_same(pumps, raw.get(url, searchFullHierarchy="true", templateName="Pump", maxCount=20))
    assert_same(
        pdc.assetDatabase.get_elements(
            web_id, search_full_hierarchy=True, name_filter="P-1*", start_index=2, max_count=3
        ),
        raw.get(url, searchFullHierarchy="true", nameFilter="P-1*", startIndex=2, maxCount=3),
    )
    templates = raw.get(f"/assetdatabases/{web_id}/elementtemplates", field="Name", query="Pump*")
    assert templates["Items"]
    assert_same(pdc.assetDatabase.get_element_templates(web_id, field=["Name"], query="Pump*"), templates)
    found = pdc.element.get_elements_query(database_web_id=web_id, query="Template:Pump", max_count=50)
    assert_same(found, raw.get("/elements/search", databaseWebId=web_id, query="Template:Pump", maxCount=50))
    assert {e.template_name for e in found.items} == {"Pump"}


def test_one_element_its_children_and_attributes(
    pdc: PIWebApiClient, raw: RawPI, pump: dict[str, Any]
) -> None:
    assert_same(pdc.element.get(pump["WebId"]), pump)
    assert_same(pdc.element.get_by_path(pump["Path"]), pump)
    assert_same(pdc.element.get_elements(pump["WebId"]), raw.get(pump["Links"]["Elements"]))
    assert_same(
        pdc.element.get_multiple(path=[pump["Path"]]), raw.get("/elements/multiple", path=pump["Path"])
    )
    attributes = raw.get(pump["Links"]["Attributes"])
    assert_same(pdc.element.get_attributes(pump["WebId"]), attributes)
    for attribute in attributes["Items"]:
        assert_same(pdc.attribute.get(attribute["WebId"]), attribute)
        assert_same(pdc.attribute.get_by_path(attribute["Path"]), attribute)
        assert_same(pdc.attribute.get_value(attribute["WebId"]), raw.get(attribute["Links"]["Value"]))
        assert_same(
            pdc.attribute.get_attributes(attribute["WebId"]),
            raw.get(f"/attributes/{attribute['WebId']}/attributes"),
        )
    web_ids = [a["WebId"] for a in attributes["Items"][:3]]
    assert_same(pdc.attribute.get_multiple(web_id=web_ids), raw.get("/attributes/multiple", webId=web_ids))


def test_a_pi_point_attribute_streams_its_points_data(
    pdc: PIWebApiClient, raw: RawPI, pi_point_attribute: dict[str, Any]
) -> None:
    """An attribute with a PI Point data reference reads the referenced point's values, in the attribute's units."""
    reference = pi_point_attribute["ConfigString"].split(";")[0]
    source = raw.get("/points", path=reference)
    web_id = pi_point_attribute["WebId"]
    recorded = pdc.stream.get_recorded(web_id, start_time=START, end_time=END)
    assert_same(recorded, raw.get(f"/streams/{web_id}/recorded", startTime=START, endTime=END))
    direct = raw.get(f"/streams/{source['WebId']}/recorded", startTime=START, endTime=END)
    assert [(i.timestamp, i.value) for i in recorded.items] == [
        (i["Timestamp"], i["Value"]) for i in direct["Items"]
    ]
    assert_same(pdc.stream.get_value(web_id), raw.get(f"/streams/{web_id}/value"))


def test_a_static_attribute_is_read_as_a_value_not_as_a_stream(
    pdc: PIWebApiClient, raw: RawPI, pump: dict[str, Any]
) -> None:
    static = [a for a in raw.get(pump["Links"]["Attributes"])["Items"] if a["DataReferencePlugIn"] == ""]
    assert static
    for attribute in static:
        expected = raw.get(f"/attributes/{attribute['WebId']}/value")
        assert_same(pdc.stream.get_value(attribute["WebId"]), expected)
        assert_same(pdc.attribute.get_value(attribute["WebId"]), expected)
    with pytest.raises(ApiException) as refused:
        pdc.stream.get_recorded(static[0]["WebId"], start_time=START, end_time=END)
    assert refused.value.status == 409


def test_element_attribute_searches(
    pdc: PIWebApiClient, raw: RawPI, database: dict[str, Any], pump: dict[str, Any]
) -> None:
    web_id = database["WebId"]
    url = f"/assetdatabases/{web_id}/elementattributes"
    found = pdc.assetDatabase.find_element_attributes(
        web_id, element_template="Pump", attribute_name_filter="Flow", search_full_hierarchy=True
    )
    assert len(found.items) > 1 and {a.name for a in found.items} == {"Flow"}
    assert_same(
        found, raw.get(url, elementTemplate="Pump", attributeNameFilter="Flow", searchFullHierarchy="true")
    )
    assert_same(
        pdc.assetDatabase.find_element_attributes(
            web_id, attribute_category="Limits", attribute_type="Double", search_full_hierarchy=True,
            sort_order="Descending", start_index=3, max_count=7,
        ),
        raw.get(url, attributeCategory="Limits", attributeType="Double", searchFullHierarchy="true",
                sortOrder="Descending", startIndex=3, maxCount=7),
    )  # fmt: skip
    parent = raw.get(pump["Links"]["Parent"])
    assert_same(
        pdc.element.find_element_attributes(parent["WebId"], element_name_filter=pump["Name"]),
        raw.get(f"/elements/{parent['WebId']}/elementattributes", elementNameFilter=pump["Name"]),
    )
    query = f"Element:{{Name:='{pump['Name']}'}} Type:=Double"
    searched = pdc.attribute.get_attributes_query(database_web_id=web_id, query=query)
    assert searched.items and {a.type for a in searched.items} == {"Double"}
    assert_same(searched, raw.get("/attributes/search", databaseWebId=web_id, query=query))


# Event frames


def test_event_frames(pdc: PIWebApiClient, raw: RawPI, database: dict[str, Any]) -> None:
    window = {"startTime": "2024-04-30T00:00:00Z", "endTime": "2024-05-01T12:00:00Z"}
    frames = raw.get(database["Links"]["EventFrames"], **window, maxCount=10)
    assert len(frames["Items"]) == 10
    assert_same(
        pdc.assetDatabase.get_event_frames(
            database["WebId"], start_time=window["startTime"], end_time=window["endTime"], max_count=10
        ),
        frames,
    )
    frame = frames["Items"][0]
    assert_same(pdc.eventFrame.get(frame["WebId"]), frame)
    assert_same(pdc.eventFrame.get_by_path(frame["Path"]), frame)
    assert_same(pdc.eventFrame.get_attributes(frame["WebId"]), raw.get(frame["Links"]["Attributes"]))
    assert_same(pdc.eventFrame.get_event_frames(frame["WebId"]), raw.get(frame["Links"]["EventFrames"]))
    referenced = raw.get(frame["Links"]["ReferencedElements"])
    assert referenced["Items"]
    assert_same(pdc.eventFrame.get_referenced_elements(frame["WebId"]), referenced)
    web_ids = [f["WebId"] for f in frames["Items"][:4]]
    assert_same(pdc.eventFrame.get_multiple(web_id=web_ids), raw.get("/eventframes/multiple", webId=web_ids))
    element = referenced["Items"][0]
    assert_same(
        pdc.element.get_event_frames(
            element["WebId"], start_time=window["startTime"], end_time=window["endTime"]
        ),
        raw.get(element["Links"]["EventFrames"], **window),
    )


# Batch


def test_batch_with_parents_and_json_paths(pdc: PIWebApiClient, raw: RawPI, pi: Emulator) -> None:
    batch = {
        "servers": models.PIRequest(method="GET", resource=f"{pi.api}/dataservers"),
        "point": models.PIRequest(
            method="GET",
            resource=f"{pi.api}/points?path={TAG_PATH}",
        ),
        "recorded": models.PIRequest(
            method="GET",
            resource=f"{{0}}?startTime={START}&endTime={END}",
            parameters=["$.point.Content.Links.RecordedData"],
            parent_ids=["point"],
        ),
        "points": models.PIRequest(
            method="GET", resource=f"{pi.api}/dataservers/{raw.server()['WebId']}/points?nameFilter=U310-*"
        ),
        "values": models.PIRequest(
            method="GET",
            request_template=models.PIRequestTemplate(resource=f"{pi.api}/streams/{{0}}/value"),
            parameters=["$.points.Content.Items[*].WebId"],
            parent_ids=["points"],
        ),
    }
    responses = pdc.batch.execute(batch)
    assert set(responses) == set(batch)
    assert {key: r.status for key, r in responses.items()} == {key: 200 for key in batch}
    point = raw.point(TAG)
    assert responses["servers"].content == raw.get("/dataservers")
    assert responses["point"].content == point
    assert responses["recorded"].content == raw.get(
        point["Links"]["RecordedData"], startTime=START, endTime=END
    )
    points = raw.points(nameFilter="U310-*")
    fan_out = responses["values"].content
    assert fan_out["Total"] == len(points) == len(fan_out["Items"]) > 1
    assert [item["Status"] for item in fan_out["Items"]] == [200] * len(points)
    assert [item["Content"] for item in fan_out["Items"]] == [
        raw.get(f"/streams/{p['WebId']}/value") for p in points
    ]
