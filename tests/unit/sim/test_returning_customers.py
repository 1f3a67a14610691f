"""`funnel simulate --customers N --logged-in-share P`: returning customers over weeks."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.cli import build_parser, simulation_config
from streams.sim.generator import generate_events

NOW = datetime(2026, 11, 2, tzinfo=UTC)
WEEK_MS = 7 * 86_400_000


def sessions_by_user(*options: str) -> tuple[int, dict[str, list[int]]]:
    """(sessions, user_id -> start times of that user's sessions) of a four-week run."""
    args = build_parser().parse_args([
        "simulate", "--seed", "3", "--sessions", "1500", "--start", "2026-10-01T00:00:00+00:00",
        "--session-rate", str(1500 / (28 * 86_400)), *options,
    ])  # fmt: skip
    starts: dict[str, int] = {}
    users: dict[str, str] = {}
    for event in generate_events(simulation_config(args, now=NOW)):
        sid, at = event["session_id"], event["occurred_at"]
        at = at if isinstance(at, int) else int(datetime.fromisoformat(at).timestamp() * 1000)
        starts[sid] = min(starts.get(sid, at), at)
        if event.get("user_id"):
            users[sid] = event["user_id"]
    by_user: dict[str, list[int]] = {}
    for sid, user in users.items():
        by_user.setdefault(user, []).append(starts[sid])
    return len(starts), by_user


def test_a_small_pool_reuses_user_ids_across_sessions_over_weeks() -> None:
    sessions, by_user = sessions_by_user("--customers", "40", "--logged-in-share", "0.8")
    logged_in = sum(len(times) for times in by_user.values())
    assert len(by_user) == 40
    assert 0.75 < logged_in / sessions < 0.85
    # Most customers come back in a later week than their first visit.
    returning = [u for u, t in by_user.items() if max(t) - min(t) >= 2 * WEEK_MS]
    assert len(returning) > 30


def test_the_logged_in_share_sets_how_often_users_are_known() -> None:
    sessions, by_user = sessions_by_user("--customers", "40", "--logged-in-share", "0.1")
    assert 0.05 < sum(len(t) for t in by_user.values()) / sessions < 0.15
    assert sessions_by_user("--logged-in-share", "0")[1] == {}
