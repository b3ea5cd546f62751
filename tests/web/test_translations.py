"""The translation catalogs: the same messages in Vietnamese and English, with the same placeholders."""

from __future__ import annotations

import re
import string

from cityops.i18n import catalog, translate

VIETNAMESE_ONLY = re.compile("[ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ]", re.IGNORECASE)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_exists_in_both_languages() -> None:
    assert set(catalog("vi")) == set(catalog("en"))


def test_both_languages_fill_in_the_same_placeholders() -> None:
    english = catalog("en")
    for key, vietnamese in catalog("vi").items():
        # A placeholder may differ only by its language suffix (expected_vi ↔ expected_en).
        normalise = {name.removesuffix("_vi").removesuffix("_en") for name in _placeholders(vietnamese)}
        assert normalise == {name.removesuffix("_vi").removesuffix("_en") for name in _placeholders(english[key])}, key


def test_vietnamese_sentences_carry_vietnamese_letters() -> None:
    for key, text in catalog("vi").items():
        if len(text.split()) >= 4:
            assert VIETNAMESE_ONLY.search(text), f"{key}: {text!r} looks untranslated"


def test_an_unknown_language_falls_back_to_vietnamese() -> None:
    assert translate("nav.home", "fr") == translate("nav.home", "vi") == "Tổng quan"
