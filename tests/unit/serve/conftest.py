"""Fixtures of the run service's tests."""

from __future__ import annotations

import pytest


class Clock:
    """A clock a test moves by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
