"""Open data (issue 9, point 6): the indicators whose catalog `access` is "public", as CSV and JSON, with a
DCAT-style catalog (JSON-LD) and a public page. No log-in; no personal data: only public indicators' values of
the province and its communes (totals, no dimensions) — never an internal or restricted indicator, never citizens'
reports, contacts or anything about a person.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from cityops.accounts.models import Agency
from cityops.catalog.models import Domain, Indicator
from cityops.catalog.pages import units
from cityops.geo.models import Subject
from cityops.i18n import format_moment
from cityops.observations.models import Observation
from cityops.web.deps import language, parts
from cityops.web.pages import render
from cityops.web.problems import Problem

router = APIRouter(include_in_schema=True, tags=["open data"])
LICENSE = "https://creativecommons.org/licenses/by/4.0/"
MAX_VALUES = 100_000
CSV_COLUMNS = ("period", "period_start", "period_end", "subject_code", "subject_name", "value", "unit")


def _public(session: Session) -> list[tuple[Indicator, str, Agency | None]]:
    rows = session.execute(
        select(Indicator, Domain.code, Agency)
        .join(Domain, Domain.id == Indicator.domain_id)
        .outerjoin(Agency, Agency.id == Indicator.owner_agency_id)
        .where(Indicator.access == "public")
        .order_by(Domain.sort_order, Indicator.code)
    ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def _coverage(session: Session, ids: list[int]) -> dict[int, tuple[Any, Any, Any, int]]:
    if not ids:
        return {}
    return {
        row[0]: (row[1], row[2], row[3], int(row[4]))
        for row in session.execute(
            select(
                Observation.indicator_id,
                func.min(Observation.period_start),
                func.max(Observation.period_end),
                func.max(Observation.received_at),
                func.count(),
            )
            .where(Observation.indicator_id.in_(ids), Observation.dims_key == "")
            .group_by(Observation.indicator_id)
        )
    }


def catalog_document(session: Session, base: str) -> dict[str, Any]:
    """The DCAT catalog as JSON-LD: one dcat:Dataset per public indicator, two dcat:Distribution (CSV, JSON)."""
    public = _public(session)
    coverage = _coverage(session, [indicator.id for indicator, _, _ in public])
    datasets = []
    for indicator, domain, owner in public:
        first, last, modified, count = coverage.get(indicator.id, (None, None, None, 0))
        url = f"{base}/open-data/{indicator.code}"
        datasets.append(
            {
                "@id": url,
                "@type": "dcat:Dataset",
                "dct:identifier": indicator.code,
                "dct:title": [
                    {"@language": "vi", "@value": indicator.name_vi},
                    {"@language": "en", "@value": indicator.name_en},
                ],
                "dct:description": [
                    {"@language": "vi", "@value": indicator.description_vi},
                    {"@language": "en", "@value": indicator.description_en},
                ],
                "dcat:theme": domain,
                "dct:publisher": {
                    "@type": "foaf:Organization",
                    "foaf:name": [
                        {"@language": "vi", "@value": owner.name_vi if owner else ""},
                        {"@language": "en", "@value": owner.name_en if owner else ""},
                    ],
                    "dct:identifier": owner.code if owner else "",
                },
                "dct:license": LICENSE,
                "dct:accrualPeriodicity": indicator.period_type,
                "dct:temporal": {
                    "@type": "dct:PeriodOfTime",
                    "dcat:startDate": first.isoformat() if first else None,
                    "dcat:endDate": last.isoformat() if last else None,
                },
                "dct:modified": modified.isoformat() if modified else None,
                "cityops:values": count,
                "dcat:distribution": [
                    {
                        "@type": "dcat:Distribution",
                        "dcat:downloadURL": f"{url}.csv",
                        "dcat:mediaType": "text/csv",
                        "dct:license": LICENSE,
                    },
                    {
                        "@type": "dcat:Distribution",
                        "dcat:downloadURL": f"{url}.json",
                        "dcat:mediaType": "application/json",
                        "dct:license": LICENSE,
                    },
                ],
            }
        )
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "cityops": f"{base}/open-data/terms#",
        },
        "@id": f"{base}/open-data/catalog.json",
        "@type": "dcat:Catalog",
        "dct:title": [
            {"@language": "vi", "@value": "Dữ liệu mở của Trung tâm Giám sát, điều hành thông minh"},
            {"@language": "en", "@value": "Open data of the Intelligent Operations Center"},
        ],
        "dct:license": LICENSE,
        "dcat:dataset": datasets,
    }


def values_of(session: Session, code: str) -> tuple[Indicator, list[dict[str, Any]]]:
    """A public indicator's values (province and communes, totals only), oldest period first."""
    indicator = session.scalars(select(Indicator).where(Indicator.code == code, Indicator.access == "public")).first()
    if indicator is None:
        raise Problem(404, "open_data_not_found", code=code[:80])
    known = units().get(indicator.unit)
    unit = known.symbol_vi if known else indicator.unit
    rows = session.execute(
        select(
            Observation.period_key,
            Observation.period_start,
            Observation.period_end,
            Subject.code,
            Subject.name_vi,
            Observation.value,
        )
        .join(Subject, Subject.id == Observation.subject_id)
        .where(
            Observation.indicator_id == indicator.id,
            Observation.dims_key == "",
            Subject.kind.in_(("province", "commune")),
        )
        .order_by(Observation.period_start, Subject.code, Observation.received_at.desc())
        .limit(MAX_VALUES)
    )
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for period, start, end, subject, name, value in rows:
        if (period, subject) in seen:  # two feeds sent the same cell: the newest received is kept
            continue
        seen.add((period, subject))
        out.append(
            {
                "period": period,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "subject_code": subject,
                "subject_name": name,
                "value": value,
                "unit": unit,
            }
        )
    return indicator, out


def _base(request: Request) -> str:
    return parts(request).settings.public_url.rstrip("/")


@router.get("/open-data/catalog.json")
async def open_catalog(request: Request) -> Response:
    """The DCAT catalog of the public indicators (JSON-LD)."""
    app_parts = parts(request)

    def read() -> dict[str, Any]:
        with app_parts.db.reading() as session:
            return catalog_document(session, _base(request))

    return JSONResponse(await run_in_threadpool(read), media_type="application/ld+json")


@router.get("/open-data/{name}")
async def open_values(request: Request, name: str) -> Response:
    """One public indicator's values: `/open-data/<code>.csv` or `/open-data/<code>.json`."""
    code, _, kind = name.rpartition(".")
    if kind not in ("csv", "json") or not code:
        raise Problem(404, "open_data_not_found", code=name[:80])
    app_parts = parts(request)

    def read() -> tuple[Indicator, list[dict[str, Any]]]:
        with app_parts.db.reading() as session:
            return values_of(session, code)

    indicator, rows = await run_in_threadpool(read)
    if kind == "json":
        return JSONResponse(
            {
                "indicator": indicator.code,
                "name_vi": indicator.name_vi,
                "name_en": indicator.name_en,
                "period_type": indicator.period_type,
                "license": LICENSE,
                "values": rows,
            }
        )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        "\ufeff" + out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{indicator.code}.csv"'},
    )


@router.get("/open-data", include_in_schema=False)
async def open_page(request: Request) -> Response:
    """The public page: every public indicator, its publisher, coverage and downloads (Vietnamese first)."""
    app_parts, lang = parts(request), language(request)

    def read() -> list[dict[str, Any]]:
        with app_parts.db.reading() as session:
            public = _public(session)
            coverage = _coverage(session, [indicator.id for indicator, _, _ in public])
        items = []
        for indicator, _domain, owner in public:
            first, last, modified, count = coverage.get(indicator.id, (None, None, None, 0))
            items.append(
                {
                    "code": indicator.code,
                    "name": indicator.name_en if lang == "en" else indicator.name_vi,
                    "description": indicator.description_en if lang == "en" else indicator.description_vi,
                    "publisher": (owner.name_en if lang == "en" else owner.name_vi) if owner else "",
                    "coverage": f"{format_moment(first, lang)[:10]} – {format_moment(last, lang)[:10]}"
                    if first
                    else "—",
                    "modified": format_moment(modified, lang) if modified else "—",
                    "count": count,
                }
            )
        return items

    return render(request, "reports/open_data.html", {"items": await run_in_threadpool(read), "license": LICENSE})
