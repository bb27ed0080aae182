"""The rate limit weighed by body size (issue 12, point 7): rate_limit_bytes_per_token."""

from __future__ import annotations

import pytest

from convostack.limits import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_request_costs_one_token_plus_one_per_n_bytes() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=10, clock=clock, bytes_per_token=1000)
    assert limiter.cost(0) == 1.0
    assert limiter.cost(4500) == 5.5
    assert limiter.take("a", limiter.cost(4500)) == 0.0
    assert limiter.take("a", limiter.cost(4500)) == pytest.approx(1.0)  # 4.5 left of 5.5
    # A body worth more than the burst needs a full bucket, and empties it.
    clock.now += 60
    assert limiter.take("a", limiter.cost(10**9)) == 0.0
    assert limiter.take("a") == pytest.approx(1.0)
    unweighed = RateLimiter(per_minute=60, burst=10, clock=clock)
    assert unweighed.cost(10**9) == 1.0


def test_a_body_of_unknown_length_is_charged_as_a_debt() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=10, clock=clock, bytes_per_token=1000)
    assert limiter.take("a") == 0.0
    limiter.charge("a", 12.0)  # 9 tokens left, 12 owed: 3 in debt
    assert limiter.take("a") == pytest.approx(4.0)
    limiter.charge("a", 10**6)  # a debt is bounded by one burst
    assert limiter.take("a") == pytest.approx(11.0)
