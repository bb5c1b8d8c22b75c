"""Shared fixtures. The end-to-end server starts once per test session (Ray and the models take ~20 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server import RunningServer, start_server, stop_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("iasovoice-e2e")
    running = start_server(root)
    yield running
    code = stop_server(running)
    assert code == 0, f"server did not shut down cleanly ({code}):\n{running.log_tail()}"
