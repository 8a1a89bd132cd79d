"""mock_pi summaries for values stamped exactly on interval boundaries: AVEVA's calculation-basis rules.

A private emulator; one numeric tag's archive between 05:00 and 10:00 is replaced by values 1, 2, 4, … 64 every half
hour from 06:00 to 09:00 (powers of two, so a Total names exactly which values an interval holds and its Count is the
number of bits). Layouts: one interval [06:00, 09:00], three ascending hours, three descending hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from osipi_dagster_tests.conftest import DEFAULT_ARGS
from osipi_dagster_tests.emulator import Emulator, start_emulator


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 5, 1, hour, minute, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


VALUES = {at(6): 1, at(6, 30): 2, at(7): 4, at(7, 30): 8, at(8): 16, at(8, 30): 32, at(9): 64}
LAYOUTS = {
    "one": {"startTime": iso(at(6)), "endTime": iso(at(9))},
    "ascending": {"startTime": iso(at(6)), "endTime": iso(at(9)), "summaryDuration": "1h"},
    "descending": {"startTime": iso(at(9)), "endTime": iso(at(6)), "summaryDuration": "1h"},
}
STARTS = {"one": ["06"], "ascending": ["06", "07", "08"], "descending": ["08", "07", "06"]}
# Totals per interval in request order: which of the values each interval holds.
TOTALS = {
    # One interval: both ends. Ascending: each interval its start. Descending: each interval its end, AVEVA's
    # "end time (most recent time)": the later boundary.
    "EventWeighted": {"one": [127], "ascending": [3, 12, 48], "descending": [96, 24, 6]},
    "EventWeightedExcludeMostRecentEvent": {"one": [63], "ascending": [3, 12, 48], "descending": [48, 12, 3]},
    "EventWeightedExcludeEarliestEvent": {"one": [126], "ascending": [6, 24, 96], "descending": [96, 24, 6]},
    "EventWeightedIncludeBothEnds": {"one": [127], "ascending": [7, 28, 112], "descending": [112, 28, 7]},
}


def write_clean_window(root: str, http: httpx.Client, web_id: str, values: dict[datetime, int]) -> None:
    """Delete every archive value of the stream in [05:00, 10:00], then insert `values`."""
    window = {"startTime": iso(at(5)), "endTime": iso(at(10)), "maxCount": "150000"}
    stamps = {v["Timestamp"] for v in http.get(f"/streams/{web_id}/recorded", params=window).json()["Items"]}
    with httpx.Client(base_url=root, timeout=60, headers={"X-Requested-With": "test"}) as admin:
        admin.post(f"/admin/streams/{web_id}/delete", json={"Timestamps": sorted(stamps)}).raise_for_status()
        items = [{"Timestamp": iso(t), "Value": v} for t, v in values.items()]
        admin.post(f"/admin/streams/{web_id}/insert", json=items).raise_for_status()
    got = http.get(f"/streams/{web_id}/recorded", params=window).json()["Items"]
    assert [(v["Timestamp"], v["Value"]) for v in got] == [(iso(t), v) for t, v in values.items()]


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with start_emulator(*DEFAULT_ARGS, log_dir=tmp_path_factory.mktemp("boundaries")) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def http(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.api, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def tag(emu: Emulator, http: httpx.Client) -> str:
    """A linear (non-step) Float tag whose 05:00–10:00 archive is VALUES."""
    server = http.get("/dataservers").json()["Items"][0]["WebId"]
    points = http.get(f"/dataservers/{server}/points", params={"maxCount": 200}).json()["Items"]
    point = next(p for p in points if p["PointType"] in ("Float32", "Float64") and not p["Step"])
    write_clean_window(emu.root, http, point["WebId"], VALUES)
    return point["WebId"]


def summary(http: httpx.Client, web_id: str, **params: Any) -> list[dict[str, Any]]:
    response = http.get(f"/streams/{web_id}/summary", params=params)
    assert response.status_code == 200, response.text
    return response.json()["Items"]


def by_type(items: list[dict[str, Any]], kind: str) -> list[Any]:
    return [i["Value"]["Value"] for i in items if i["Type"] == kind]


def hours(items: list[dict[str, Any]], kind: str) -> list[str]:
    return [i["Value"]["Timestamp"][11:13] for i in items if i["Type"] == kind]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("basis", list(TOTALS))
def test_event_weighted_bases_hold_the_documented_boundary_events(
    http: httpx.Client, tag: str, basis: str, layout: str
) -> None:
    items = summary(http, tag, summaryType=["Count", "Total"], calculationBasis=basis, **LAYOUTS[layout])
    totals = TOTALS[basis][layout]
    assert by_type(items, "Total") == totals
    assert by_type(items, "Count") == [bin(t).count("1") for t in totals]
    # Auto stamps a Count or Total with the interval's start, its earliest time, in request order.
    assert hours(items, "Count") == hours(items, "Total") == STARTS[layout]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("basis", list(TOTALS))
def test_stream_set_count_fast_path_agrees(http: httpx.Client, tag: str, basis: str, layout: str) -> None:
    """summaryType=Count alone over stream sets takes Engine.counts (one pass) for one interval: same answers."""
    params = {"webId": tag, "summaryType": "Count", "calculationBasis": basis, **LAYOUTS[layout]}
    response = http.get("/streamsets/summary", params=params)
    assert response.status_code == 200, response.text
    items = response.json()["Items"][0]["Items"]
    assert by_type(items, "Count") == [bin(t).count("1") for t in TOTALS[basis][layout]]
    assert items == summary(http, tag, summaryType="Count", calculationBasis=basis, **LAYOUTS[layout])


def test_time_types_stamp_the_earliest_or_latest_end(http: httpx.Client, tag: str) -> None:
    for layout, latest in (("ascending", ["07", "08", "09"]), ("descending", ["09", "08", "07"])):
        params = {"summaryType": "Count", "calculationBasis": "EventWeighted", **LAYOUTS[layout]}
        assert hours(summary(http, tag, timeType="MostRecentTime", **params), "Count") == latest
        assert hours(summary(http, tag, timeType="EarliestTime", **params), "Count") == STARTS[layout]
    # Auto stamps a Maximum with the time of the maximum.
    items = summary(
        http, tag, summaryType="Maximum", calculationBasis="EventWeighted", **LAYOUTS["ascending"]
    )
    assert by_type(items, "Maximum") == [2, 8, 32]
    assert [i["Value"]["Timestamp"][11:16] for i in items] == ["06:30", "07:30", "08:30"]


def test_summary_duration_sign_lays_the_grid_and_the_time_range_the_order(
    http: httpx.Client, tag: str
) -> None:
    """Positive durations run from the earliest bound, negative ones from the latest (AVEVA, summary duration);
    values come in the time range's order. [06:00, 08:30] is not a whole number of hours."""
    asc = {"startTime": iso(at(6)), "endTime": iso(at(8, 30)), "calculationBasis": "EventWeighted"}
    desc = {**asc, "startTime": asc["endTime"], "endTime": asc["startTime"]}

    def totals_and_starts(params: dict[str, str], duration: str) -> tuple[list[Any], list[str]]:
        items = summary(http, tag, summaryType="Total", summaryDuration=duration, **params)
        return by_type(items, "Total"), [i["Value"]["Timestamp"][11:16] for i in items]

    assert totals_and_starts(asc, "1h") == ([3, 12, 16], ["06:00", "07:00", "08:00"])
    assert totals_and_starts(asc, "-1h") == ([1, 6, 24], ["06:00", "06:30", "07:30"])
    assert totals_and_starts(desc, "-1h") == ([48, 12, 2], ["07:30", "06:30", "06:00"])
    assert totals_and_starts(desc, "1h") == ([32, 24, 6], ["08:00", "07:00", "06:00"])
    # A duration at least as long as the range is one interval: both ends.
    assert totals_and_starts(asc, "3h") == ([63], ["06:00"])


def test_time_weighted_descending_mirrors_ascending(http: httpx.Client, tag: str) -> None:
    for basis in ("TimeWeighted", "TimeWeightedContinuous", "TimeWeightedDiscrete"):
        kinds = ["Total", "Average", "Minimum", "Maximum", "PercentGood"]
        up = summary(http, tag, summaryType=kinds, calculationBasis=basis, **LAYOUTS["ascending"])
        down = summary(http, tag, summaryType=kinds, calculationBasis=basis, **LAYOUTS["descending"])
        for kind in kinds:
            assert by_type(down, kind) == by_type(up, kind)[::-1]
        assert hours(down, "Average") == STARTS["descending"]


def test_continuous_and_discrete_override_the_step_attribute(http: httpx.Client, tag: str) -> None:
    """06:00–07:00 holds 1 (06:00), 2 (06:30), 4 (07:00): linear, the mean is (1+2)/4 + (2+4)/4 = 2.25; held
    (stair steps), 1.5. The tag is not stepped, so TimeWeighted is linear."""
    hour = {"startTime": iso(at(6)), "endTime": iso(at(7)), "summaryType": "Average"}
    mean = {b: by_type(summary(http, tag, calculationBasis=b, **hour), "Average")[0] for b in
            ("TimeWeighted", "TimeWeightedContinuous", "TimeWeightedDiscrete")}  # fmt: skip
    assert mean == {"TimeWeighted": 2.25, "TimeWeightedContinuous": 2.25, "TimeWeightedDiscrete": 1.5}


def test_standard_deviation_needs_two_events(http: httpx.Client, tag: str) -> None:
    one = {"startTime": iso(at(6, 10)), "endTime": iso(at(6, 40)), "calculationBasis": "EventWeighted"}
    items = summary(http, tag, summaryType=["Count", "StdDev", "PopulationStdDev", "Average"], **one)
    values = {i["Type"]: i["Value"] for i in items}
    assert values["Count"]["Value"] == 1 and values["Average"]["Value"] == 2
    for kind in ("StdDev", "PopulationStdDev"):
        assert values[kind]["Good"] is False and values[kind]["Value"]["Name"] == "Calc Failed"


def test_af_attribute_summaries_follow_the_same_rules(emu: Emulator, http: httpx.Client) -> None:
    """By attribute WebId and through the element's by-parent stream set."""
    server = http.get("/assetservers").json()["Items"][0]
    database = http.get(server["Links"]["Databases"]).json()["Items"][0]
    elements = http.get(database["Links"]["Elements"], params={"searchFullHierarchy": "true", "maxCount": 40})
    element, attribute = next(
        (e, a)
        for e in elements.json()["Items"]
        for a in http.get(e["Links"]["Attributes"]).json()["Items"]
        if a.get("DataReferencePlugIn") == "PI Point" and a["Type"] in ("Double", "Single", "Int32", "Int16")
    )
    write_clean_window(emu.root, http, attribute["WebId"], VALUES)
    for basis, layouts in TOTALS.items():
        for layout, totals in layouts.items():
            params = {"summaryType": ["Count", "Total"], "calculationBasis": basis, **LAYOUTS[layout]}
            counts = [bin(t).count("1") for t in totals]
            alone = summary(http, attribute["WebId"], **params)
            assert by_type(alone, "Count") == counts and by_type(alone, "Total") == totals
            response = http.get(
                f"/streamsets/{element['WebId']}/summary", params={"nameFilter": attribute["Name"], **params}
            )
            assert response.status_code == 200, response.text
            (item,) = response.json()["Items"]
            assert item["WebId"] == attribute["WebId"] and item["Items"] == alone


@pytest.mark.parametrize("basis", ["TimeWeighted", "TimeWeightedContinuous", "TimeWeightedDiscrete"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_time_weighted_count_is_seconds_of_good_data(
    http: httpx.Client, tag: str, basis: str, layout: str
) -> None:
    """PI's time-weighted Count is the "sum of event time duration": every value here is good, so whole intervals."""
    items = summary(http, tag, summaryType="Count", calculationBasis=basis, **LAYOUTS[layout])
    seconds = [10800.0] if layout == "one" else [3600.0, 3600.0, 3600.0]
    assert by_type(items, "Count") == seconds
    assert {i["Value"]["UnitsAbbreviation"] for i in items} == {"s"}
    together = http.get("/streamsets/summary", params={"webId": tag, "summaryType": "All", **LAYOUTS[layout]})
    assert together.status_code == 200, together.text
    assert by_type(together.json()["Items"][0]["Items"], "Count") == seconds


BAD = [
    ({"summaryType": "Total", "calculationBasis": "Weighted"}, "calculationBasis 'Weighted'"),
    ({"summaryType": "Total", "timeType": "Latest"}, "timeType 'Latest'"),
    ({"summaryType": "Total", "summaryDuration": "0h"}, "must not be zero"),
    ({"summaryType": "Total", "summaryDuration": "1mo"}, "calendar"),
    ({"summaryType": "Total", "summaryDuration": "1d", "timeZone": "Europe/Oslo"}, "wall-clock"),
    ({"summaryType": "Total", "sampleType": "Sometimes"}, "sampleType 'Sometimes'"),
    ({"summaryType": "Total", "sampleType": "Interval", "sampleInterval": "soon"}, "sampleInterval"),
    ({"summaryType": "Total", "filterExpression": "'SINUSOID' > 50"}, "filterExpression"),
]


@pytest.mark.parametrize(("params", "says"), BAD)
def test_what_is_not_implemented_is_a_400_with_pi_errors(
    http: httpx.Client, tag: str, params: dict[str, str], says: str
) -> None:
    window = {"startTime": iso(at(6)), "endTime": iso(at(9))}
    for response in (
        http.get(f"/streams/{tag}/summary", params={**window, **params}),
        http.get("/streamsets/summary", params={"webId": tag, **window, **params}),
    ):
        assert response.status_code == 400
        errors = response.json()["Errors"]
        assert len(errors) == 1 and says in errors[0]
