"""`cityops geo places import FILE`, the real command on a fresh data directory."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from cityops.geo.service import SAMPLE_PLACES

SCRIPT = Path(sys.executable).parent / "cityops"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "cityops.cli"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("places-cli")


def cityops(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CITYOPS_")}
    env["CITYOPS_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [*COMMAND, *args], cwd=data_dir, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def places(data_dir: Path) -> dict[str, str]:
    with closing(sqlite3.connect(data_dir / "cityops.db")) as connection:
        return dict(connection.execute("SELECT code, name_vi FROM places").fetchall())


def test_import_the_sample_then_a_file_with_bad_rows(data_dir: Path) -> None:
    first = cityops(data_dir, "geo", "places", "import", str(SAMPLE_PLACES["40"]))
    assert first.returncode == 0, first.stderr
    assert "0 bị từ chối" in first.stdout and "0 rejected" in first.stdout
    assert places(data_dir)["dl.kim_lien"] == "Khu di tích Kim Liên"
    file = data_dir / "more.csv"
    file.write_text(
        "ma,ten,loai,vi_do,kinh_do\n"
        "dl.kim_lien,Khu di tích Kim Liên (Làng Sen),Điểm du lịch,18.6960,105.5390\n"
        "dl.ha_noi,Hồ Gươm,Điểm du lịch,21.0287,105.8523\n",
        encoding="utf-8",
    )
    second = cityops(data_dir, "geo", "places", "import", str(file))
    assert second.returncode == 0, second.stderr
    assert "row 3 (dl.ha_noi): " in second.stdout and "ngoài tỉnh" in second.stdout
    assert "outside the province" in second.stdout
    assert "1 cập nhật" in second.stdout and "1 updated" in second.stdout
    assert places(data_dir)["dl.kim_lien"] == "Khu di tích Kim Liên (Làng Sen)"
    with closing(sqlite3.connect(data_dir / "cityops.db")) as connection:
        actors = connection.execute("SELECT DISTINCT actor FROM audit_log WHERE entity_type = 'place'").fetchall()
    assert actors == [("cli",)]


def test_a_file_that_is_not_utf8_is_refused_without_a_traceback(data_dir: Path) -> None:
    file = data_dir / "latin.csv"
    file.write_bytes("ma,ten,loai,vi_do,kinh_do\nx,Ch\u1ee3,Chợ,18.7,105.6\n".encode("utf-16"))
    result = cityops(data_dir, "geo", "places", "import", str(file))
    assert result.returncode == 1
    assert "UTF-8" in result.stderr and "Traceback" not in result.stderr
    assert "x" not in places(data_dir)
