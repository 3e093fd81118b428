"""Which --ray-address values name this machine's loopback interface (joined on loopback only)."""

import pytest

pytest.importorskip("ray")

from a3c.drivers.ray.connection import is_loopback  # noqa: E402


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1:6379", True), ("127.0.0.2:6379", True), ("localhost:6379", True), ("[::1]:6379", True),
    ("::1", True), ("127.0.0.1", True), ("10.0.0.5:6379", False), ("head.example.org:6379", False),
    ("auto", False), ("[2001:db8::1]:6379", False),
])
def test_loopback_addresses_are_told_from_the_others(address, loopback):
    assert is_loopback(address) is loopback
