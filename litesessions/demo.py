"""``litesessions demo``: a short tour of the store against a real file, with a readable report."""

from __future__ import annotations

import random
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import TextIO

import attrs

from litesessions.cleanup import SessionCleanup
from litesessions.models import UserSession, UserSessionsFilter
from litesessions.store import SqliteUserSessionStore

__all__ = ["DemoClock", "run_demo"]

SUBJECTS = ("alice", "bob", "carol", "dave", "erin")
SESSIONS_PER_SUBJECT = 60
PARTITION = "litesessions-demo"


class DemoClock:
    """A clock the demo can move forward, so sessions expire without waiting."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self.now += delta


def run_demo(db: str, *, out: TextIO, seed: int = 2026) -> dict[str, int]:
    """Run the tour against ``db`` (partition ``litesessions-demo``); print to ``out``; return the counts."""
    rng = random.Random(seed)
    # The demo's time starts two hours in the past: moving it forward never
    # reaches the real "now", so cleanup (which spans every partition of the
    # file) only removes sessions of other partitions that really expired.
    clock = DemoClock(datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2))
    counts: dict[str, int] = {}

    def say(line: str) -> None:
        print(line, file=out)

    with SqliteUserSessionStore(db, partition_key=PARTITION, clock=clock) as store:
        say(f"litesessions demo: {store.path} (partition {PARTITION!r})")
        counts["leftover"] = sum(store.delete_user_sessions(UserSessionsFilter(subject_id=s)) for s in SUBJECTS)
        if counts["leftover"]:
            say(f"  removed {counts['leftover']} sessions left by an earlier demo run")

        # 1. Logins: each session expires in 20 minutes, 8 hours, or never.
        sessions = []
        for subject in SUBJECTS:
            for _ in range(SESSIONS_PER_SUBJECT):
                lifetime = rng.choice((timedelta(minutes=20), timedelta(hours=8), None))
                sessions.append(
                    UserSession(
                        key=secrets.token_urlsafe(24),
                        subject_id=subject,
                        session_id=secrets.token_hex(8),
                        created=clock.now,
                        renewed=clock.now,
                        expires=None if lifetime is None else clock.now + lifetime,
                        ticket=secrets.token_urlsafe(1536),  # about the size of a real ticket
                    )
                )
        started = time.perf_counter()
        for session in sessions:
            store.create_user_session(session)
        elapsed = time.perf_counter() - started
        counts["created"] = len(sessions)
        say(
            f"1. created {len(sessions)} sessions for {len(SUBJECTS)} subjects "
            f"({elapsed * 1e6 / len(sessions):.0f} us per create)"
        )

        # 2. Sliding expiration: a third of the short sessions are renewed for another hour.
        clock.advance(timedelta(minutes=5))
        renewable = [s for s in sessions if s.expires is not None and s.expires - s.created < timedelta(hours=1)]
        renewed = 0
        for session in renewable[::3]:
            update = attrs.evolve(session.to_update(), renewed=clock.now, expires=clock.now + timedelta(hours=1))
            renewed += store.update_user_session(session.key, update)
        counts["renewed"] = renewed
        say(f"2. renewed {renewed} of {len(renewable)} short sessions for another hour (sliding expiration)")

        # 3. Lookups by key, by subject, by OIDC session id.
        probe = sessions[7]
        found = store.get_user_session(probe.key)
        assert found is not None and found.ticket == probe.ticket
        by_subject = store.get_user_sessions(UserSessionsFilter(subject_id="alice"))
        by_sid = store.get_user_sessions(UserSessionsFilter(session_id=probe.session_id))
        counts["alice"] = len(by_subject)
        say(
            f"3. lookups: by key -> {found.subject_id}'s session; by subject 'alice' -> {len(by_subject)} "
            f"sessions; by session id -> {len(by_sid)} session"
        )

        # 4. Back-channel logout: the identity provider ends all of bob's sessions.
        counts["revoked"] = store.delete_user_sessions(UserSessionsFilter(subject_id="bob"))
        say(f"4. back-channel logout of 'bob': revoked {counts['revoked']} sessions")

        # 5. An hour later, cleanup removes what expired (never-expiring sessions stay).
        clock.advance(timedelta(hours=1))
        counts["expired"] = SessionCleanup(store, batch_size=100).delete_expired_sessions()
        say(f"5. one hour later, cleanup deleted {counts['expired']} expired sessions in batches of 100")

        left = sum(len(store.get_user_sessions(UserSessionsFilter(subject_id=s))) for s in SUBJECTS)
        counts["left"] = left
        say(f"   {left} sessions remain; run the demo again and it starts over in its own partition")
    return counts
