"""The http_pull tests' source system: a real HTTP server on 127.0.0.1, started and stopped by each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.http_pull.source import SourceServer


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server
