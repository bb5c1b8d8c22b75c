"""Shared fixtures. The end-to-end servers start once per test session (Ray and the models take ~20 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server import STANDIN_CALLS, RunningServer, start_server, stop_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("iasovoice-e2e")
    running = start_server(root)
    yield running
    code = stop_server(running)
    assert code == 0, f"server did not shut down cleanly ({code}):\n{running.log_tail()}"


@pytest.fixture(scope="session")
def standin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real server whose calls take the whole path on stand-in engines (notes, metrics, no models)."""
    root = tmp_path_factory.mktemp("iasovoice-standin")
    running = start_server(root, STANDIN_CALLS)
    yield running
    code = stop_server(running)
    assert code == 0, f"server did not shut down cleanly ({code}):\n{running.log_tail()}"


def pytest_itemcollected(item: pytest.Item) -> None:
    """Under xdist (`make test` runs two workers), every test on the real-model server runs in one worker.

    That server costs ~75 s and ~4 GB to start, so it must start once; its calls are mostly real-time
    waits (audio is paced as a phone line paces it), which the other worker fills with everything else.
    (Marked as each item is collected: xdist reads the marks in its own collection hook.)
    """
    if "server" in getattr(item, "fixturenames", ()):
        item.add_marker(pytest.mark.xdist_group("real-models"))
