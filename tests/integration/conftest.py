"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def drivers(monkeypatch) -> list:
    """The RayDrivers started during a test, to reach their actors from the outside."""
    from a3c.drivers.ray.driver import RayDriver

    started = []
    start = RayDriver.start

    def recording_start(self, config, start_time):
        started.append(self)
        start(self, config, start_time)

    monkeypatch.setattr(RayDriver, "start", recording_start)
    return started
