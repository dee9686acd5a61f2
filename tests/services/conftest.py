"""Fixtures shared by the service-process tests."""

from collections.abc import Iterator

import pytest

from p1_servicekit.testing import CLEAN_EXITS, ServiceProcess


@pytest.fixture
def stopped() -> Iterator[list[ServiceProcess]]:
    """Processes a test started; each is stopped afterwards and must exit cleanly."""
    procs: list[ServiceProcess] = []
    yield procs
    for proc in procs:
        assert proc.stop() in CLEAN_EXITS, proc.logs()
