"""Indicators are versioned: the current and past definitions, and each stored value read under the definition
in force when it was received."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from derived_support import ON_TIME, PROVINCE, RATE, RESOLVED, observation, seed, values
from sqlalchemy import select

from cityops.accounts.service import Actor
from cityops.catalog.models import Indicator, IndicatorVersion
from cityops.catalog.service import DEFAULT_CATALOG_DIR, load_catalog
from conftest import AgencyKey, make_key


@pytest.fixture
def igate(database, clock) -> AgencyKey:
    return make_key(
        database, clock(), agency="trung_tam_phuc_vu_hcc", feed="igate_v", indicators=[RATE, ON_TIME, RESOLVED]
    )


def _changed_catalog(tmp_path: Path) -> Path:
    """A copy of the default catalog where the on-time rate's 2025 target is 99 (not 98) and it warns below 96."""
    folder = tmp_path / "catalog"
    shutil.copytree(DEFAULT_CATALOG_DIR, folder)
    path = folder / "hcc.toml"
    text = path.read_text()
    start = text.index(f'code = "{RATE}"')
    end = text.index("[[indicators]]", start)
    block = text[start:end]
    assert "value = 98.0" in block and "warning = 95.0" in block
    block = block.replace("value = 98.0", "value = 99.0", 1).replace("warning = 95.0", "warning = 96.0", 1)
    path.write_text(text[:start] + block + text[end:])
    return folder


def test_an_unchanged_indicator_has_one_current_version(client, igate: AgencyKey) -> None:
    answer = client.get(f"/api/v1/indicators/{RATE}/versions", headers=igate.headers)

    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert (page["indicator"], page["version"], page["total"]) == (RATE, 1, 1)
    [current] = page["items"]
    assert (current["version"], current["current"], current["in_force_until"]) == (1, True, None)
    assert current["changed_fields"] == []
    definition = current["definition"]
    assert (definition["numerator"], definition["denominator"], definition["unit"]) == (ON_TIME, RESOLVED, "percent")
    assert (definition["owner_agency"], definition["domain"]) == ("trung_tam_phuc_vu_hcc", "hcc")


def test_a_changed_definition_keeps_the_old_one_and_old_values_keep_their_meaning(
    client, database, clock, igate: AgencyKey, tmp_path: Path
) -> None:
    folder = _changed_catalog(tmp_path)
    with database.reading() as session:
        loaded = session.execute(select(Indicator.updated_at, Indicator.updated_by).where(Indicator.code == RATE)).one()
    seed(client, igate, observation(RATE, PROVINCE, 97.0, "2026-09"))  # received under version 1
    clock.advance(timedelta(days=1))
    changed_at = clock()
    try:
        with database.writing() as session:
            assert load_catalog(session, Actor("cán bộ vận hành"), changed_at, folder).indicators_updated == 1
        clock.advance(timedelta(hours=1))
        seed(client, igate, observation(RATE, PROVINCE, 98.5, "2026-10"))  # received under version 2

        page = client.get(f"/api/v1/indicators/{RATE}/versions", headers=igate.headers).json()
        september = values(client, igate.headers, RATE, period="2026-09", subject=PROVINCE)
        october = values(client, igate.headers, RATE, period="2026-10", subject=PROVINCE)

        assert (page["version"], page["total"]) == (2, 2)
        current, old = page["items"]
        assert (current["version"], current["current"], current["changed_by"]) == (2, True, "cán bộ vận hành")
        assert current["in_force_from"] == old["in_force_until"] == changed_at.isoformat()
        assert current["in_force_until"] is None
        assert current["changed_fields"] == ["targets", "thresholds"]
        assert current["definition"]["targets"][0] == {"year": 2025, "value": 99.0, "subject": ""}
        assert current["definition"]["thresholds"]["warning"] == 96.0
        assert (old["version"], old["current"]) == (1, False)
        assert old["definition"]["targets"][0]["value"] == 98.0 and old["definition"]["thresholds"]["warning"] == 95.0
        assert old["definition"]["unit"] == current["definition"]["unit"] == "percent"
        assert (september["version"], september["items"][0]["stored_version"]) == (2, 1)
        assert october["items"][0]["stored_version"] == 2
    finally:  # put the default catalog back for the other tests, as tests/catalog/test_catalog_load.py does,
        # and when and by whom the rate was loaded (the catalog page shows it)
        with database.writing() as session:
            load_catalog(session, Actor("test"), clock())
            session.execute(IndicatorVersion.__table__.delete())
            session.execute(Indicator.__table__.update().values(version=1))
            session.execute(
                Indicator.__table__.update()
                .where(Indicator.code == RATE)
                .values(updated_at=loaded.updated_at, updated_by=loaded.updated_by)
            )
