"""Lake root and table URI handling: local roots resolved and created, remote URIs passed through untouched.

No network: remote schemes are checked only for the URIs and storage options handed to deltalake.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from osipi_dagster.lib.lake import Lake


def test_relative_local_root_is_resolved_and_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lake = Lake("data/lake")
    assert lake.is_local
    assert lake.root_uri == str(tmp_path / "data" / "lake")
    assert (tmp_path / "data" / "lake").is_dir()
    assert lake.table("pi_timeseries").uri == str(tmp_path / "data" / "lake" / "pi_timeseries")


def test_default_root_is_data_lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Lake().root_uri == str(tmp_path / "data" / "lake")


def test_file_uri_is_local(tmp_path: Path) -> None:
    lake = Lake(f"file://{tmp_path}/l")
    assert lake.is_local and lake.root_uri == str(tmp_path / "l")


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("s3://bucket/lake/", "s3://bucket/lake/pi/recorded"),
        (
            "abfss://container@account.dfs.core.windows.net/lake",
            "abfss://container@account.dfs.core.windows.net/lake/pi/recorded",
        ),
        ("gs://bucket", "gs://bucket/pi/recorded"),
        ("S3://Bucket/x", "s3://Bucket/x/pi/recorded"),
    ],
)
def test_remote_uris_pass_through_with_storage_options(root: str, expected: str) -> None:
    options = {"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    lake = Lake(root, storage_options=options)
    table = lake.table("pi/recorded")
    assert not lake.is_local
    assert table.uri == expected
    assert dict(table.storage_options) == options


def test_unsupported_scheme_and_bad_names_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported scheme 'http'"):
        Lake("http://example.com/lake")
    with pytest.raises(ValueError, match="names no bucket"):
        Lake("s3://")
    lake = Lake(tmp_path)
    for bad in ("", "../escape", "a//b", "a b"):
        with pytest.raises(ValueError, match="Invalid table name"):
            lake.table(bad)
