"""The relay's cursor: in order, nothing twice, gaps filled late or given up."""

from __future__ import annotations

from menusync.realtime.feed import OutboxCursor, Position


def test_ids_in_order_advance_the_cursor_without_gaps() -> None:
    cursor = OutboxCursor(0, gap_timeout=5)

    accepted = [cursor.accept(i, now=0) for i in (1, 2, 3)]

    assert accepted == [True, True, True]
    assert cursor.position() == Position(3)


def test_an_id_seen_twice_is_emitted_once() -> None:
    cursor = OutboxCursor(0, gap_timeout=5)
    cursor.accept(1, now=0)

    assert cursor.accept(1, now=0) is False


def test_a_skipped_id_stays_open_and_is_emitted_when_its_transaction_commits() -> None:
    cursor = OutboxCursor(0, gap_timeout=5)
    cursor.accept(1, now=0)
    cursor.accept(4, now=0)

    assert cursor.gaps == [2, 3]
    assert not cursor.position().was_emitted(3)
    assert cursor.accept(3, now=1) is True
    assert cursor.gaps == [2]
    assert cursor.position().was_emitted(3)


def test_a_gap_that_never_fills_is_given_up_after_the_timeout() -> None:
    cursor = OutboxCursor(0, gap_timeout=5)
    cursor.accept(2, now=0)

    assert cursor.expire(now=4.9) == []
    assert cursor.expire(now=5.0) == [1]
    assert cursor.gaps == []
    assert cursor.accept(1, now=6) is False


def test_a_huge_jump_tracks_at_most_max_gaps() -> None:
    cursor = OutboxCursor(0, gap_timeout=5, max_gaps=100)

    cursor.accept(1_000_000, now=0)

    assert len(cursor.gaps) == 100
    assert cursor.gaps[0] == 1_000_000 - 100


def test_ids_missing_at_startup_are_gaps() -> None:
    cursor = OutboxCursor(10, gap_timeout=5, missing=[7, 9])

    assert cursor.position() == Position(10, frozenset({7, 9}))
    assert cursor.accept(9, now=0) is True
