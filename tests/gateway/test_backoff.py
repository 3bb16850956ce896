from tradeops.gateway.backoff import Backoff, BackoffPolicy


def test_network_failures_double_up_to_the_cap() -> None:
    b = Backoff(BackoffPolicy(base=0.5, cap=4.0, jitter=0.0))
    assert [b.next_delay("network") for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next_delay("dropped") == 0.5


def test_auth_failures_are_retried_slowly() -> None:
    b = Backoff(BackoffPolicy(slow_base=30.0, slow_cap=300.0, jitter=0.0))
    assert [b.next_delay("auth") for _ in range(5)] == [30.0, 60.0, 120.0, 240.0, 300.0]


def test_connection_limit_waits_for_the_broker_to_free_a_slot() -> None:
    b = Backoff(BackoffPolicy(connection_limit=90.0, jitter=0.0))
    assert b.next_delay("connection-limit") >= 90.0


def test_jitter_stays_within_its_band() -> None:
    low = Backoff(BackoffPolicy(base=1.0, jitter=0.2), rand=lambda: 0.0)
    high = Backoff(BackoffPolicy(base=1.0, jitter=0.2), rand=lambda: 1.0)
    assert low.next_delay("network") == 0.8
    assert high.next_delay("network") == 1.2
