"""The security pages: the registry form (CSRF, errors in the user's language), a system's page, the import."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from conftest import login


def _token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def test_register_a_system_and_import_findings_through_the_pages(client: TestClient, personas: dict[str, str]) -> None:
    login(client, "operator")
    page = client.get("/security/systems")
    assert page.status_code == 200 and "Đăng ký hệ thống" in page.text
    token = _token(page.text)
    form = {
        "code": "dich_vu_cong",
        "name_vi": "Cổng dịch vụ công",
        "owner_agency": "trung_tam_phuc_vu_hcc",
        "security_level": "3",
        "hosts": "dichvucong.nghean.gov.vn, 10.10.2.0/24",
        "csrf_token": token,
    }
    refused = client.post("/security/systems", data={**form, "csrf_token": "x"})
    assert refused.status_code == 422 and "Biểu mẫu đã hết hạn" in refused.text
    bad = client.post("/security/systems", data={**form, "security_level": "9"})
    assert bad.status_code == 422 and "Nghị định 85/2016/NĐ-CP" in bad.text
    made = client.post("/security/systems", data=form, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == "/security/systems/dich_vu_cong"
    system = client.get("/security/systems/dich_vu_cong")
    assert system.status_code == 200 and "10.10.2.0/24" in system.text
    assert client.get("/security/systems/khong_co").status_code == 404
    csv_text = "system,reference,title,level,cvss,status,found_at\ndich_vu_cong,CVE-2024-1,Lỗi,high,,open,\nx,y,,,,,\n"
    answer = client.post(
        "/security/vulnerabilities",
        data={"csrf_token": token},
        files={"file": ("ket_qua.csv", csv_text.encode(), "text/csv")},
    )
    assert answer.status_code == 200 and "Đã lưu 1 lỗ hổng" in answer.text and "Dòng 2" in answer.text
    english = client.get("/security?lang=en")
    assert "Events by severity" in english.text and "dich_vu_cong" in english.text
    client.cookies.set("cityops_lang", "vi")


def test_agency_user_cannot_register(client: TestClient, app: Any, personas: dict[str, str]) -> None:
    login(client, "officer_a")
    page = client.get("/security/systems")
    assert page.status_code == 200 and 'action="/security/systems"' not in page.text
    assert client.post("/security/systems", data={"code": "x"}).status_code == 403
