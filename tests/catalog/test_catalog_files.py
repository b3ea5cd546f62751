"""The default catalog: every subsystem's monitored items, valid references, clear errors for bad files."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from cityops.catalog.service import DEFAULT_CATALOG_DIR, CatalogError, read_catalog

# Monitored items per subsystem, from the source document (mission.md) — at least these many.
EXPECTED_ITEMS = {"vbdt": 7, "hcc": 8, "yte": 7, "giaoduc": 6, "pakn": 2, "dulich": 2, "ktxh": 10, "attt": 6, "antt": 5}


def test_default_catalog_covers_the_nine_subsystems_with_their_monitored_items() -> None:
    files = read_catalog()
    items: dict[str, set[int]] = defaultdict(set)
    for file in files.domains:
        for indicator in file.indicators:
            items[file.domain.code].add(indicator.monitored_item)
    assert set(items) == set(EXPECTED_ITEMS)
    for domain, expected in EXPECTED_ITEMS.items():
        if domain in ("vbdt", "hcc", "yte", "giaoduc", "pakn", "dulich"):
            assert len(items[domain]) == expected, domain
        else:
            assert len(items[domain]) >= expected, domain


def test_every_indicator_has_names_in_both_languages_a_unit_an_owner_and_a_period() -> None:
    files = read_catalog()
    agencies = {agency.code for agency in files.agencies}
    for file in files.domains:
        for indicator in file.indicators:
            assert indicator.name_vi and indicator.name_en and indicator.name_vi != indicator.name_en
            assert indicator.unit in files.units
            assert indicator.owner in agencies
            if indicator.unit == "percent":
                assert (indicator.min, indicator.max) == (0, 100), indicator.code


def test_security_and_police_indicators_are_restricted() -> None:
    for file in read_catalog().domains:
        if file.domain.code in ("attt", "antt"):
            assert {indicator.access for indicator in file.indicators} == {"restricted"}


def _copy_catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    shutil.copytree(DEFAULT_CATALOG_DIR, folder)
    return folder


def test_a_wrong_field_is_reported_with_file_indicator_and_field(tmp_path: Path) -> None:
    folder = _copy_catalog(tmp_path)
    path = folder / "hcc.toml"
    path.write_text(path.read_text().replace('period = "month"', 'period = "fortnight"', 1))
    with pytest.raises(CatalogError) as error:
        read_catalog(folder)
    message = str(error.value)
    assert "hcc.toml" in message and "hcc.ho_so_tiep_nhan" in message and "period" in message


def test_an_unknown_owner_agency_is_reported(tmp_path: Path) -> None:
    folder = _copy_catalog(tmp_path)
    path = folder / "yte.toml"
    text = path.read_text()
    owner_line = next(line for line in text.splitlines() if line.startswith("owner = "))
    path.write_text(text.replace(owner_line, 'owner = "so_khong_ton_tai"', 1))
    with pytest.raises(CatalogError, match=r"yte\.toml: indicator yte\.\w+: field owner: unknown agency"):
        read_catalog(folder)


def test_a_ratio_whose_part_is_missing_is_reported(tmp_path: Path) -> None:
    folder = _copy_catalog(tmp_path)
    path = folder / "hcc.toml"
    path.write_text(path.read_text().replace('denominator = "hcc.ho_so_giai_quyet"', 'denominator = "hcc.khong_co"', 1))
    with pytest.raises(CatalogError, match=r"field denominator: unknown indicator 'hcc.khong_co'"):
        read_catalog(folder)


def test_a_file_that_is_not_toml_is_reported_by_name(tmp_path: Path) -> None:
    folder = _copy_catalog(tmp_path)
    (folder / "dulich.toml").write_text("[domain\ncode = ")
    with pytest.raises(CatalogError, match=r"dulich\.toml: not valid TOML"):
        read_catalog(folder)
