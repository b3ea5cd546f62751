from conftest import AgencyKey


def test_batch_keeps_good_items(client, hcc_key: AgencyKey) -> None:
    answer = client.post(
        "/api/v1/observations",
        headers=hcc_key.headers,
        json={
            "observations": [
                {"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": 12345},
                {"indicator": "hcc.ho_so_tiep_nhan", "subject": "40", "period": "2026-10", "value": "x"},
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
