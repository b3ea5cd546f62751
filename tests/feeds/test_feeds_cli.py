"""`cityops feeds …` as an operator types it: create with a schedule and settings, list, pause, resume, run now.

The real command in a subprocess on a fresh data directory (SQLite), like tests/test_cli.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from feeds_support import TOKEN, VISITS, agency_endpoint, pull_settings

from test_cli import cityops, ok, query, refused


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli-feeds")
    ok(cityops(directory, "db upgrade"))
    return directory


def test_create_with_a_schedule_then_list_pause_and_resume(data_dir: Path) -> None:
    created = ok(
        cityops(
            data_dir,
            f"feeds create --code cli_ngay --agency so_y_te --indicator {VISITS} "
            "--cadence 'hằng ngày trước 17:00' --grace 30 --coverage list --subject 40,16681",
        )
    )
    assert created.strip() == "feed created: cli_ngay (1 indicators)"
    schedule = "SELECT cadence, grace_minutes, coverage, subject_codes FROM feeds WHERE code = 'cli_ngay'"
    [(cadence, grace, coverage, subjects)] = query(data_dir, schedule)
    assert (cadence, grace, coverage, json.loads(subjects)) == ("daily by 17:00", 30, "list", ["16681", "40"])
    line = next(line for line in ok(cityops(data_dir, "feeds list")).splitlines() if line.startswith("cli_ngay\t"))
    assert line == "cli_ngay\tso_y_te\tpush\tdaily by 17:00\tgrace 30 min\tactive\tnever run\tno secrets"

    assert ok(cityops(data_dir, "feeds pause cli_ngay")).strip() == "feed paused: cli_ngay"
    assert query(data_dir, "SELECT paused FROM feeds WHERE code = 'cli_ngay'") == [(1,)]
    assert "\tpaused\t" in ok(cityops(data_dir, "feeds list"))
    assert ok(cityops(data_dir, "feeds resume cli_ngay")).strip() == "feed resumed: cli_ngay"
    assert query(data_dir, "SELECT paused FROM feeds WHERE code = 'cli_ngay'") == [(0,)]
    audited = "SELECT actor, action FROM audit_log WHERE entity_type = 'feed' AND details LIKE '%cli_ngay%' ORDER BY id"
    assert query(data_dir, audited) == [("cli", "feed.create"), ("cli", "feed.update"), ("cli", "feed.update")]


def test_a_pull_feed_from_a_settings_file_is_run_now(data_dir: Path, tmp_path: Path) -> None:
    records = [{"don_vi": "40", "ngay": "26/11/2025", "so_luot": 4321}]
    with agency_endpoint(TOKEN, records) as endpoint:
        settings_file = tmp_path / "his.json"
        settings_file.write_text(json.dumps(pull_settings(endpoint.url)), encoding="utf-8")
        ok(
            cityops(
                data_dir,
                f"feeds create --code cli_his --agency so_y_te --indicator {VISITS} --kind http_pull "
                f"--settings-file {settings_file} --poll-seconds 600 --cadence 'every 1 hour'",
            )
        )
        [(secrets, settings)] = query(data_dir, "SELECT secrets, settings FROM feeds WHERE code = 'cli_his'")
        assert secrets and TOKEN not in secrets and TOKEN not in settings
        listing = ok(cityops(data_dir, "feeds list"))
        assert TOKEN not in listing
        expected = "cli_his\tso_y_te\thttp_pull\tevery 1 hour\tgrace 0 min\tactive\tnever run\tsecrets set: token"
        assert expected in listing

        run = ok(cityops(data_dir, "feeds run cli_his"))
        assert endpoint.seen_tokens == [TOKEN]  # the stored token, decrypted for the pull
    assert run.splitlines()[0].endswith(": ok — received 1, accepted 1, rejected 0, attempts 1")
    assert query(
        data_dir,
        "SELECT o.value FROM observations o JOIN feeds f ON f.id = o.feed_id WHERE f.code = 'cli_his'",
    ) == [(4321.0,)]
    runs = "SELECT trigger, status FROM feed_runs r JOIN feeds f ON f.id = r.feed_id WHERE f.code = 'cli_his'"
    assert query(data_dir, runs) == [("manual", "ok")]
    listed = ok(cityops(data_dir, "feeds list")).splitlines()
    assert "\tok " in next(line for line in listed if line.startswith("cli_his"))


def test_refusals_say_why_in_both_languages_and_store_nothing(data_dir: Path, tmp_path: Path) -> None:
    def command(extra: str) -> subprocess.CompletedProcess[str]:
        return cityops(data_dir, f"feeds create --code cli_sai --agency so_y_te --indicator {VISITS} {extra}")

    cadence = refused(command("--cadence 'hai lần một tuần'"))
    assert "Không hiểu tần suất “hai lần một tuần”" in cadence and "is not understood" in cadence
    kind = refused(command("--kind fax"))
    assert "Không có loại kết nối “fax”" in kind and "There is no connector kind “fax”" in kind
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    assert "không đọc được tệp cấu hình JSON" in refused(command(f"--kind http_pull --settings-file {broken}"))
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"auth": "bearer"}), encoding="utf-8")
    assert "thiếu trường bắt buộc “url”" in refused(command(f"--kind http_pull --settings-file {missing}"))
    assert query(data_dir, "SELECT COUNT(*) FROM feeds WHERE code = 'cli_sai'") == [(0,)]

    assert "Không có nguồn dữ liệu “khong_co”." in refused(cityops(data_dir, "feeds pause khong_co"))
    ok(cityops(data_dir, f"feeds create --code cli_day --agency so_y_te --indicator {VISITS}"))
    push = refused(cityops(data_dir, "feeds run cli_day"))
    assert "không tự lấy dữ liệu theo lịch" in push and "does not fetch data on a schedule" in push
    taken = refused(cityops(data_dir, f"feeds create --code cli_day --agency so_y_te --indicator {VISITS}"))
    assert "Đã có nguồn dữ liệu mã “cli_day”." in taken and "already exists" in taken
