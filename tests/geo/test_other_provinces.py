"""Every unit lookup works for any of the 34 provinces, not only Nghệ An (through the service)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, or_, select

from cityops.accounts.service import Actor
from cityops.clock import FrozenClock
from cityops.db.engine import Database
from cityops.geo.models import Place, Subject
from cityops.geo.service import (
    boundary_document,
    find_units,
    get_unit,
    import_places,
    list_units,
    load_province,
    province_boundaries,
    province_communes,
    province_geometry,
    province_subject,
    province_units,
)


@pytest.fixture
def hanoi(database: Database) -> Iterator[str]:
    """Hà Nội's units loaded beside Nghệ An's, removed again after the test."""
    with database.writing() as session:
        load_province(session, "01")
    yield "01"
    with database.writing() as session:
        province = province_subject(session, "01")
        assert province is not None
        ids = select(Subject.id).where(or_(Subject.id == province.id, Subject.parent_id == province.id))
        session.execute(delete(Place).where(Place.commune_id.in_(ids)))
        session.execute(delete(Subject).where(Subject.parent_id == province.id))
        session.execute(delete(Subject).where(Subject.id == province.id))


def test_every_province_has_units_and_a_boundary() -> None:
    codes = sorted(province_boundaries())
    assert len(codes) == 34
    for code in codes:
        units = province_units(code)
        assert units[0].kind == "province" and len(units) > 30, code
        assert province_geometry(code) is not None
        assert boundary_document(code).startswith(b'{"type":"FeatureCollection"')


def test_units_of_another_province_are_listed_and_found(database: Database, hanoi: str) -> None:
    with database.reading() as session:
        units, total = list_units(session, hanoi)
        assert total == len(province_units(hanoi)) and units[0].name_vi == "Thành phố Hà Nội"
        # Nghệ An's units stay out of Hà Nội's list, and the other way round.
        assert {unit.code for unit in units} & {"40", "16681"} == set()
        assert list_units(session, "40")[1] == 131
        assert [u.code for u in list_units(session, hanoi, q="hoan kiem")[0]] == ["00070"]
        assert get_unit(session, hanoi, "00070") is not None and get_unit(session, "40", "00070") is None
        assert [u.name_vi for u in find_units(session, "Hoàn Kiếm", province_code=hanoi)] == ["Phường Hoàn Kiếm"]
        assert find_units(session, "Hoàn Kiếm", province_code="40") == []
        assert len(province_communes(session, hanoi)) == total - 1


@pytest.mark.parametrize("name", ["Phường Phương Liệt", "Phương Liệt", "phuong liet"])
def test_a_name_starting_like_a_type_word_is_found_every_way(database: Database, hanoi: str, name: str) -> None:
    # "Phương" folds to "phuong", the type word of a ward: the lookup must not strip it from the name itself.
    with database.reading() as session:
        assert [unit.code for unit in find_units(session, name, province_code=hanoi)] == ["00352"]
        assert list_units(session, hanoi, q=name)[0][0].code == "00352"


def test_places_of_another_province_are_checked_against_its_own_boundary(
    database: Database, hanoi: str, clock: FrozenClock
) -> None:
    now = clock()
    data = (
        "code,kind,name_vi,latitude,longitude\n"
        "hn.ho_guom,tourist_site,Hồ Gươm,21.0287,105.8523\n"
        "na.cua_lo,tourist_site,Bãi biển Cửa Lò,18.8090,105.7230\n"
    ).encode()
    with database.writing() as session:
        report = import_places(session, Actor("test"), now, data, province_code=hanoi)
        assert (report.created, [r.code for r in report.rejected]) == (1, ["outside_province"])
        place = session.scalar(select(Place).where(Place.code == "hn.ho_guom"))
        assert place is not None and place.commune_id is not None
        commune = session.get(Subject, place.commune_id)
        assert commune is not None and commune.name_vi == "Phường Hoàn Kiếm"
