"""A monotonic clock tests move by hand (``running_engine(monotonic=clock)``): timeouts without sleeping."""

from __future__ import annotations


class FakeMonotonic:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
