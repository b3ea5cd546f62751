"""The province's 2025 administrative units and looking them up by name."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from cityops.db.engine import Database
from cityops.geo.models import Subject
from cityops.geo.service import find_units, province_units, search_key


def test_nghe_an_has_130_communes_and_wards_with_centroids(database: Database) -> None:
    with database.reading() as session:
        assert session.scalar(select(func.count()).where(Subject.kind == "commune")) == 130
        province = session.scalar(select(Subject).where(Subject.kind == "province"))
        assert province is not None and province.code == "40" and province.name_vi == "Tỉnh Nghệ An"
        missing = session.scalar(select(func.count()).where(Subject.kind == "commune", Subject.latitude.is_(None)))
        assert missing == 0


@pytest.mark.parametrize("name", ["Phường Thành Vinh", "Thành Vinh", "thanh vinh", "PHUONG THANH VINH"])
def test_a_unit_is_found_with_or_without_diacritics_and_type_word(database: Database, name: str) -> None:
    with database.reading() as session:
        found = find_units(session, name)
    assert [unit.code for unit in found] == ["16681"]


def test_any_of_the_34_provinces_works() -> None:
    hanoi = province_units("1")
    assert hanoi[0].kind == "province" and hanoi[0].name_vi == "Thành phố Hà Nội"
    assert len(hanoi) > 100


def test_an_unknown_province_is_refused() -> None:
    with pytest.raises(ValueError, match="no province"):
        province_units("99")


def test_search_key_folds_vietnamese() -> None:
    assert search_key("Xã Đô Lương") == search_key("do luong") == "doluong"


def test_every_commune_has_its_peoples_committee_under_the_province(database: Database) -> None:
    from cityops.accounts.models import Agency

    with database.reading() as session:
        province_committee = session.scalar(select(Agency).where(Agency.code == "ubnd_tinh"))
        communes = list(session.scalars(select(Agency).where(Agency.kind == "commune")))
    assert province_committee is not None
    assert len(communes) == 130
    assert {agency.parent_id for agency in communes} == {province_committee.id}
    assert "Ủy ban nhân dân Phường Thành Vinh" in {agency.name_vi for agency in communes}
