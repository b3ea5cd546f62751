"""Every problem code the API can answer is explained in docs/problems.md, where its `type` points."""

from __future__ import annotations

from pathlib import Path

from cityops.web.problems import PROBLEM_CODES

DOC = Path(__file__).resolve().parents[2] / "docs" / "problems.md"


def test_every_problem_code_has_an_entry_in_the_docs() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [code for code in PROBLEM_CODES if f'id="{code}"' not in text and f"#{code})" not in text]
    assert not missing, f"docs/problems.md lacks: {', '.join(missing)}"
