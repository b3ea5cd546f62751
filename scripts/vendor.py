"""Copy the front-end files cityops serves from node_modules into the package (run by `make setup`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "src" / "cityops" / "web" / "static" / "vendor"
LEAFLET_IMAGES = ("layers.png", "layers-2x.png", "marker-icon.png", "marker-icon-2x.png", "marker-shadow.png")
FILES = {
    "htmx.org/dist/htmx.min.js": "htmx.min.js",
    "htmx.org/LICENSE": "htmx.LICENSE.txt",
    "@fontsource/noto-sans/LICENSE": "noto-sans.LICENSE.txt",
    "swagger-ui-dist/swagger-ui-bundle.js": "swagger-ui-bundle.js",
    "swagger-ui-dist/swagger-ui.css": "swagger-ui.css",
    "swagger-ui-dist/LICENSE": "swagger-ui.LICENSE.txt",
    "swagger-ui-dist/NOTICE": "swagger-ui.NOTICE.txt",
    # Charts; the bundle includes zrender (BSD-3-Clause) and code derived from d3 (BSD-3-Clause).
    "echarts/dist/echarts.min.js": "echarts.min.js",
    "echarts/LICENSE": "echarts.LICENSE.txt",
    "echarts/NOTICE": "echarts.NOTICE.txt",
    "echarts/licenses/LICENSE-d3": "echarts.LICENSE-d3.txt",
    "zrender/LICENSE": "zrender.LICENSE.txt",
    # The map (BSD-2-Clause and MIT); leaflet.css finds its images in images/ next to it.
    "leaflet/dist/leaflet.js": "leaflet.js",
    "leaflet/dist/leaflet.css": "leaflet.css",
    "leaflet/LICENSE": "leaflet.LICENSE.txt",
    **{f"leaflet/dist/images/{image}": f"images/{image}" for image in LEAFLET_IMAGES},
    "leaflet.markercluster/dist/leaflet.markercluster.js": "leaflet.markercluster.js",
    "leaflet.markercluster/dist/MarkerCluster.css": "MarkerCluster.css",
    "leaflet.markercluster/dist/MarkerCluster.Default.css": "MarkerCluster.Default.css",
    "leaflet.markercluster/MIT-LICENCE.txt": "leaflet.markercluster.LICENSE.txt",
    **{
        f"@fontsource/noto-sans/files/noto-sans-{subset}-{weight}-normal.woff2": f"noto-sans-{subset}-{weight}.woff2"
        for subset in ("latin", "latin-ext", "vietnamese")
        for weight in (400, 700)
    },
}


def main() -> int:
    TARGET.mkdir(parents=True, exist_ok=True)
    missing = []
    for source, name in FILES.items():
        path = ROOT / "node_modules" / source
        if not path.exists():
            missing.append(source)
            continue
        (TARGET / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, TARGET / name)
    if missing:
        print("missing front-end files (run npm ci):", ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
