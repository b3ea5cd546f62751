"""Rebuild src/cityops/geo/data/vietnam-provinces-2025.geojson from the full-resolution boundaries (one-off).

    .venv/bin/python scripts/simplify_boundaries.py [SOURCE.geojson]

SOURCE defaults to ../shared/data/geo/vietnam-provinces-2025.geojson (34 provinces, 3.9 MB; see its
ATTRIBUTION.md). The 34 provinces are simplified together as a coverage (shapely.coverage_simplify), so that
neighbours keep one shared border without gaps or overlaps, then snapped to a 0.0001° grid (about 11 m) and
written with 4 decimals. An islet that the snapping would erase is kept from the source with 5 decimals, so no
island is lost (the Hoàng Sa and Trường Sa archipelagos included). The result must stay under 200 KB, be valid,
and name every province so that cityops.geo.service matches it to a 2025 province code; the script refuses to
write it otherwise. shapely is needed only here (it comes with vietnamadminunits), not at run time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "data" / "geo" / "vietnam-provinces-2025.geojson"
TARGET = ROOT / "src" / "cityops" / "geo" / "data" / "vietnam-provinces-2025.geojson"
TOLERANCE = 0.012  # degrees; coverage_simplify's Visvalingam–Whyatt tolerance
GRID, DECIMALS = 1e-4, 4
ISLET_GRID, ISLET_DECIMALS = 1e-5, 5
MAX_BYTES = 200 * 1024


def _rounded(value: Any, decimals: int) -> Any:
    if isinstance(value, (list, tuple)):
        if value and isinstance(value[0], float):
            return [round(number, decimals) for number in value]
        return [_rounded(part, decimals) for part in value]
    return value


def _parts(geometry: Any) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [] if geometry.is_empty else [geometry]
    return [part for part in getattr(geometry, "geoms", []) if isinstance(part, Polygon) and not part.is_empty]


def simplify(source: Path) -> dict[str, Any]:
    """The simplified FeatureCollection."""
    from cityops.geo.service import province_code_for_name

    with source.open(encoding="utf-8") as handle:
        collection = json.load(handle)
    features = collection["features"]
    originals = [shape(feature["geometry"]) for feature in features]
    simplified = shapely.coverage_simplify(originals, TOLERANCE, simplify_boundary=True)
    out: list[dict[str, Any]] = []
    for feature, original, light in zip(features, originals, simplified, strict=True):
        snapped = _parts(shapely.set_precision(light, GRID))
        polygons = [_rounded(mapping(part)["coordinates"], DECIMALS) for part in snapped]
        kept = MultiPolygon(snapped) if snapped else None
        for islet in _parts(original):
            if kept is None or not kept.intersects(islet.buffer(GRID * 2)):
                rescued = _parts(shapely.set_precision(islet, ISLET_GRID))
                polygons += [_rounded(mapping(part)["coordinates"], ISLET_DECIMALS) for part in rescued]
        geometry = (
            {"type": "Polygon", "coordinates": polygons[0]}
            if len(polygons) == 1
            else {"type": "MultiPolygon", "coordinates": polygons}
        )
        if not shape(geometry).is_valid:
            raise SystemExit(f"{feature['properties']['ten_tinh']}: the simplified boundary is not valid")
        if province_code_for_name(feature["properties"]["ten_tinh"]) is None:
            raise SystemExit(f"{feature['properties']['ten_tinh']}: matches no 2025 province")
        properties = {name: feature["properties"][name] for name in ("ten_tinh", "code", "gid")}
        out.append({"type": "Feature", "properties": properties, "geometry": geometry})
    return {"type": "FeatureCollection", "name": "vietnam-provinces-2025-simplified", "features": out}


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    document = simplify(source)
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise SystemExit(f"{size:,} bytes is over {MAX_BYTES:,}: raise TOLERANCE")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text, encoding="utf-8")
    print(f"{TARGET.relative_to(ROOT)}: {len(document['features'])} provinces, {size:,} bytes")


if __name__ == "__main__":
    main()
