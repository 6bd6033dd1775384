"""Followed warnings: each CAP document a feed brings is kept once (sender, identifier, sent),
mapped onto our areas, and by the administrator's rules raised at once, put before the
officers for one tap, or only recorded; updates replace and cancels stop what they reference.
Every decision is in the audit record."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from controller.alerts.alerts import AlertRequest, Alerts
from controller.alerts.cap import CapAlert, CapRefused, choose_info
from controller.alerts.cap_feeds import FeedError, feed_client, fetch, read_index
from controller.alerts.cap_map import CapMapping, MappedAlert, Priority, map_alert
from controller.alerts.cap_parse import parse_cap
from controller.auth.audit import record
from controller.core.db import Database
from controller.core.errors import Conflict, NotFound
from controller.core.models import (
    Alert,
    AlertStatus,
    Area,
    CapFeed,
    CapGeocode,
    CapRule,
    CapWarning,
    CapWarningStatus,
    Node,
)
from controller.core.station_hosts import StationPolicy

log = logging.getLogger(__name__)

ACTOR = "cap-feed"  # the audit's actor for what the controller does by a rule
RULE_ACTIONS = ("auto", "approve", "ignore")
# How a rule's decision is named in the audit record (an officer's tap is "cap.approve").
_DECISIONS = {"auto": "cap.auto", "approve": "cap.await_approval", "ignore": "cap.ignore"}
MAX_ALERT_MINUTES = 7 * 24 * 60


class WarningDecided(Conflict):
    code = "cap_warning_decided"


class WarningExpired(Conflict):
    code = "cap_warning_expired"


@dataclass(frozen=True)
class PollResult:
    feed_id: int
    status: int  # 200, 304, or 0 when the feed could not be read
    taken: tuple[int, ...] = ()  # warnings new in this poll
    errors: tuple[str, ...] = ()


def rule_matches(rule: CapRule, warning: CapWarning, areas: dict[str, str | None]) -> bool:
    if rule.feed_id is not None and rule.feed_id != warning.feed_id:
        return False
    for field, value in (
        ("severities", warning.severity),
        ("urgencies", warning.urgency),
        ("certainties", warning.certainty),
    ):
        wanted = json.loads(getattr(rule, field))
        if wanted and value not in wanted:
            return False
    wanted_areas = set(json.loads(rule.areas))
    if not wanted_areas:
        return True
    for area_id in json.loads(warning.areas):
        seen: set[str] = set()
        current: str | None = area_id
        while current is not None and current not in seen:
            if current in wanted_areas:
                return True
            seen.add(current)
            current = areas.get(current)
    return False


class WarningFeeds:
    """The followed feeds and the warnings read from them."""

    def __init__(
        self,
        db: Database,
        alerts: Alerts,
        policy: StationPolicy,
        max_bytes: int,
        default_mapping: CapMapping | None = None,
    ) -> None:
        self.db = db
        self.alerts = alerts
        self.policy = policy
        self.max_bytes = max_bytes
        self.default_mapping = default_mapping or CapMapping()
        self._lock = asyncio.Lock()  # one decision at a time: a poll and a tap never race

    def now(self) -> datetime:
        return self.alerts.now()

    # Polling -------------------------------------------------------------------------------

    async def poll_due(self) -> list[PollResult]:
        """Poll every enabled feed whose interval has passed (the periodic job's run)."""
        now = self.now()
        with self.db.session() as session:
            feeds = session.exec(select(CapFeed).where(CapFeed.enabled == True)).all()  # noqa: E712
        due = [
            f.id
            for f in feeds
            if f.id is not None
            and (f.polled_at is None or f.polled_at + timedelta(seconds=f.interval_s) <= now)
        ]
        return [await self.poll(feed_id) for feed_id in due]

    async def poll(self, feed_id: int) -> PollResult:
        with self.db.session() as session:
            feed = session.get(CapFeed, feed_id)
            if feed is None:
                raise NotFound(f"feed {feed_id} does not exist")
        errors: list[str] = []
        taken: list[int] = []
        status = 0
        async with feed_client(self.policy) as client:
            try:
                got = await fetch(
                    client,
                    feed.url,
                    max_bytes=self.max_bytes,
                    etag=feed.etag,
                    last_modified=feed.last_modified,
                )
                status = got.status
                if got.status == 200:
                    entries = read_index(got.body, feed.url)
                    if entries is None:  # the address is one CAP document
                        taken += await self._take_one(got.body, feed_id, feed.url, errors)
                    else:
                        seen = self._seen_urls([e.url for e in entries if e.url])
                        for entry in reversed(entries):  # oldest first: updates after alerts
                            if entry.document is None and entry.url in seen:
                                continue
                            document = entry.document
                            if document is None:
                                try:
                                    doc = await fetch(client, entry.url, max_bytes=self.max_bytes)
                                    document = doc.body
                                except FeedError as exc:
                                    errors.append(str(exc))
                                    continue
                            taken += await self._take_one(document, feed_id, entry.url, errors)
            except FeedError as exc:
                errors.append(str(exc))
        with self.db.session() as session:
            stored = session.get(CapFeed, feed_id)
            if stored is not None:
                stored.polled_at = self.now()
                if status == 200:
                    stored.etag, stored.last_modified = got.etag, got.last_modified
                    stored.changed_at = stored.polled_at
                stored.error = "; ".join(errors)[:500] or None
                session.add(stored)
                session.commit()
        for error in errors:
            log.warning("CAP feed %s: %s", feed_id, error)
        return PollResult(feed_id, status, tuple(taken), tuple(errors))

    def _seen_urls(self, urls: Sequence[str]) -> set[str]:
        if not urls:
            return set()
        with self.db.session() as session:
            rows = session.exec(select(CapWarning.url).where(col(CapWarning.url).in_(urls)))
            return set(rows.all())

    async def _take_one(
        self, document: bytes, feed_id: int | None, url: str, errors: list[str]
    ) -> list[int]:
        try:
            warning, new = await self.take(document, feed_id=feed_id, url=url)
        except CapRefused as exc:
            errors.append(
                f"{url or 'the feed'}: CAP document refused ({exc.reason}): {exc.message}"
            )
            with self.db.session() as session:
                record(
                    session,
                    ACTOR,
                    "cap.refused",
                    url[:200],
                    {"feed": feed_id, "reason": exc.reason, "message": exc.message},
                    role="system",
                    outcome="refused",
                )
            return []
        return [warning.id] if new and warning.id is not None else []

    # One document ---------------------------------------------------------------------------

    def mapping(self, session: Session) -> CapMapping:
        table: dict[str, dict[str, str]] = {
            name: dict(codes) for name, codes in self.default_mapping.geocode_areas.items()
        }
        for code in session.exec(select(CapGeocode)).all():
            table.setdefault(code.value_name, {})[code.value] = code.area_id
        return self.default_mapping.model_copy(update={"geocode_areas": table})

    async def take(
        self, document: bytes, *, feed_id: int | None = None, url: str = ""
    ) -> tuple[CapWarning, bool]:
        """Keep and act on one CAP document; (the warning, whether it was new). A document
        already kept (same sender, identifier and sent) is not acted on again."""
        alert = parse_cap(document)
        async with self._lock:
            with self.db.session() as session:
                known = session.exec(
                    select(CapWarning).where(
                        CapWarning.sender == alert.sender,
                        CapWarning.identifier == alert.identifier,
                        CapWarning.sent == alert.sent,
                    )
                ).first()
                if known is not None:
                    return known, False
                areas = {a.id: a.parent_id for a in session.exec(select(Area)).all()}
                nodes = [
                    (n.id, n.area_id, n.lat, n.lon)
                    for n in session.exec(select(Node).where(Node.retired == False)).all()  # noqa: E712
                ]
                mapping = self.mapping(session)
            warning = self._warning(alert, document, feed_id, url, mapping.preferred_languages)
            try:
                mapped = map_alert(
                    alert, mapping, areas=areas, nodes=nodes, now=self.now(), checking=True
                )
            except CapRefused as exc:
                mapped = None
                warning.status, warning.reason = CapWarningStatus.refused, exc.message
            if mapped is not None:
                self._fill(warning, mapped)
                if mapped.refusals:
                    warning.status = CapWarningStatus.refused
                    warning.reason = "; ".join(r.message for r in mapped.refusals)
            if not self._store(warning):
                return self._stored(alert), False
            self._audit_received(warning)
            if mapped is not None and warning.status == CapWarningStatus.pending:
                await self._decide(warning, mapped, areas)
            return warning, True

    def _warning(
        self,
        alert: CapAlert,
        document: bytes,
        feed_id: int | None,
        url: str,
        languages: Sequence[str],
    ) -> CapWarning:
        info = choose_info(alert, languages)
        return CapWarning(
            feed_id=feed_id,
            url=url[:2000],
            sender=alert.sender[:200],
            identifier=alert.identifier[:200],
            sent=alert.sent,
            msg_type=alert.msg_type,
            cap_version=alert.version,
            severity=info.severity if info else None,
            urgency=info.urgency if info else None,
            certainty=info.certainty if info else None,
            title=((info.headline or info.event) if info else alert.msg_type)[:200],
            text="",
            areas="[]",
            references=json.dumps([r.identifier for r in alert.references]),
            document=document.decode("utf-8", "replace"),
            received_at=self.now(),
        )

    @staticmethod
    def _fill(warning: CapWarning, mapped: MappedAlert) -> None:
        warning.priority = mapped.priority
        warning.test = mapped.test
        warning.title = mapped.title[:200]
        warning.text = mapped.text
        warning.areas = json.dumps(list(mapped.area_ids))
        warning.expires_at = mapped.expires

    def _store(self, warning: CapWarning) -> bool:
        with self.db.session() as session:
            session.add(warning)
            try:
                session.commit()
            except IntegrityError:  # another instance kept it first
                return False
            session.refresh(warning)
        return True

    def _stored(self, alert: CapAlert) -> CapWarning:
        with self.db.session() as session:
            return session.exec(
                select(CapWarning).where(
                    CapWarning.sender == alert.sender,
                    CapWarning.identifier == alert.identifier,
                    CapWarning.sent == alert.sent,
                )
            ).one()

    def _audit_received(self, warning: CapWarning) -> None:
        with self.db.session() as session:
            record(
                session,
                ACTOR,
                "cap.received",
                f"cap-warning:{warning.id}",
                {
                    "feed": warning.feed_id,
                    "sender": warning.sender,
                    "identifier": warning.identifier,
                    "msg_type": warning.msg_type,
                    "cap_version": warning.cap_version,
                    "status": warning.status,
                    "reason": warning.reason,
                    "areas": json.loads(warning.areas),
                },
                role="system",
            )

    async def _decide(
        self, warning: CapWarning, mapped: MappedAlert, areas: dict[str, str | None]
    ) -> None:
        assert warning.id is not None
        if mapped.action == "cancel":
            await self._cancel_referenced(warning, mapped)
            return
        with self.db.session() as session:
            # An update takes the place of an earlier warning still waiting for an officer.
            for earlier in self._referenced(session, warning.sender, mapped):
                if earlier.status == CapWarningStatus.pending:
                    earlier.status = CapWarningStatus.superseded
                    earlier.reason = f"replaced by {warning.identifier}"
                    session.add(earlier)
            session.commit()
            rules = session.exec(select(CapRule).order_by(col(CapRule.id))).all()
        rule = next((r for r in rules if rule_matches(r, warning, areas)), None)
        action = rule.action if rule is not None else "approve"
        with self.db.session() as session:
            stored = session.get(CapWarning, warning.id)
            assert stored is not None
            stored.rule_id = rule.id if rule is not None else None
            if action == "ignore":
                stored.status = CapWarningStatus.ignored
                stored.reason = f"rule {rule.name if rule else ''!r} records it only"
            session.add(stored)
            session.commit()
            record(
                session,
                ACTOR,
                _DECISIONS[action],
                f"cap-warning:{warning.id}",
                {"rule": stored.rule_id, "identifier": warning.identifier},
                role="system",
            )
        warning.rule_id = stored.rule_id
        warning.status = stored.status
        if action == "auto":
            await self._raise(warning, ACTOR, {"rule": rule.id if rule else None})

    def _referenced(
        self, session: Session, sender: str, mapped: MappedAlert
    ) -> Sequence[CapWarning]:
        if not mapped.references:
            return []
        return session.exec(
            select(CapWarning).where(
                CapWarning.sender == sender,
                col(CapWarning.identifier).in_(mapped.referenced_identifiers),
            )
        ).all()

    async def _cancel_referenced(self, warning: CapWarning, mapped: MappedAlert) -> None:
        cancelled: list[str] = []
        with self.db.session() as session:
            for earlier in self._referenced(session, warning.sender, mapped):
                if earlier.status == CapWarningStatus.pending:
                    earlier.status = CapWarningStatus.cancelled
                    earlier.reason = f"cancelled by {warning.identifier}"
                    session.add(earlier)
            session.commit()
            running = referenced_alert(session, warning.sender, mapped.referenced_identifiers)
        if running is not None:
            done = await self.alerts.cancel(running.id, ACTOR)
            cancelled.append(done.id)
            with self.db.session() as session:
                record(
                    session,
                    ACTOR,
                    "alert.cancel",
                    done.id,
                    {"cap": warning.identifier, "sender": warning.sender, "feed": warning.feed_id},
                    role="system",
                )
        with self.db.session() as session:
            stored = session.get(CapWarning, warning.id)
            assert stored is not None
            stored.status = CapWarningStatus.raised if cancelled else CapWarningStatus.ignored
            stored.alert_id = cancelled[0] if cancelled else None
            stored.reason = (
                f"cancelled alert {cancelled[0]}" if cancelled else "nothing running to cancel"
            )
            stored.decided_by, stored.decided_at = ACTOR, self.now()
            session.add(stored)
            session.commit()

    async def _raise(
        self,
        warning: CapWarning,
        author: str,
        detail: dict[str, Any],
        may_update: Callable[[Alert], None] | None = None,
    ) -> Alert:
        """Issue (or, for an update of a running alert, replace) the alert a warning stands for.
        The warning moves from pending to raised in one statement, so it goes out once; it is
        pending again if the alert does not go out (`may_update` refusing the running alert
        included)."""
        assert warning.id is not None and warning.expires_at is not None
        now = self.now()
        with self.db.session() as session:
            claimed = session.execute(
                update(CapWarning)
                .where(
                    col(CapWarning.id) == warning.id,
                    col(CapWarning.status) == CapWarningStatus.pending,
                )
                .values(status=CapWarningStatus.raised, decided_by=author[:64], decided_at=now)
            )
            session.commit()
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                raise WarningDecided(f"warning {warning.id} is no longer waiting for a decision")
            running = referenced_alert(session, warning.sender, json.loads(warning.references))
        mapping = self.default_mapping
        priority: Priority = "emergency" if warning.priority == "emergency" else "priority"
        minutes = max((warning.expires_at - now).total_seconds() / 60, 1)
        req = AlertRequest(
            areas=json.loads(warning.areas),
            text=warning.text,
            title=warning.title,
            repeat=mapping.repeat[priority],
            volume=mapping.volume[priority],
            test=warning.test,
            expires_in_min=min(minutes, MAX_ALERT_MINUTES),
            cap_sender=warning.sender,
            cap_identifier=warning.identifier,
            author=author,
        )
        try:
            if running is not None:
                if may_update is not None:
                    may_update(running)  # a person's right over the alert it would change
                alert = await self.alerts.update(running.id, req)
                alert.cap_identifier = warning.identifier
                with self.db.session() as session:
                    session.add(alert)
                    session.commit()
                action = "alert.update"
            else:
                alert = await self.alerts.issue(req)
                action = "alert.test" if alert.test else "alert.issue"
        except Exception:
            with self.db.session() as session:  # it did not go out: back to the officers
                stored = session.get(CapWarning, warning.id)
                if stored is not None:
                    stored.status = CapWarningStatus.pending
                    stored.decided_by = stored.decided_at = None
                    session.add(stored)
                    session.commit()
            raise
        with self.db.session() as session:
            stored = session.get(CapWarning, warning.id)
            assert stored is not None
            stored.alert_id = alert.id
            session.add(stored)
            session.commit()
            record(
                session,
                author,
                action,
                alert.id,
                {
                    "cap": warning.identifier,
                    "sender": warning.sender,
                    "feed": warning.feed_id,
                    "warning": warning.id,
                    **detail,
                },
                role="system" if author == ACTOR else "",
            )
        return alert

    # Officers' decisions --------------------------------------------------------------------

    def pending(self) -> list[CapWarning]:
        """Waiting warnings, the most urgent first (emergency before priority, newest first)."""
        with self.db.session() as session:
            rows = session.exec(
                select(CapWarning)
                .where(CapWarning.status == CapWarningStatus.pending)
                .order_by(col(CapWarning.received_at).desc())
            ).all()
        now = self.now()
        live = [w for w in rows if w.expires_at is None or w.expires_at > now]
        return sorted(live, key=lambda w: w.priority != "emergency")

    async def approve(
        self, warning_id: int, author: str, may_update: Callable[[Alert], None] | None = None
    ) -> Alert:
        """Raise a pending warning for `author`. An update of a running alert changes that
        alert's message on its own nodes: `may_update` raises if the author may not."""
        async with self._lock:
            warning = self._pending(warning_id)
            return await self._raise(warning, author, {"approved": True}, may_update)

    async def reject(self, warning_id: int, author: str) -> CapWarning:
        async with self._lock:
            self._pending(warning_id)
            with self.db.session() as session:
                stored = session.get(CapWarning, warning_id)
                assert stored is not None
                stored.status = CapWarningStatus.rejected
                stored.decided_by, stored.decided_at = author[:64], self.now()
                session.add(stored)
                session.commit()
                session.refresh(stored)
            return stored

    def _pending(self, warning_id: int) -> CapWarning:
        with self.db.session() as session:
            warning = session.get(CapWarning, warning_id)
        if warning is None:
            raise NotFound(f"warning {warning_id} does not exist")
        if warning.status != CapWarningStatus.pending:
            raise WarningDecided(
                f"warning {warning_id} is {warning.status}, not waiting for a decision"
            )
        if warning.expires_at is not None and warning.expires_at <= self.now():
            raise WarningExpired(
                f"warning {warning_id} has expired; there is nothing left to announce"
            )
        return warning


def referenced_alert(session: Session, sender: str, identifiers: Sequence[str]) -> Alert | None:
    """The running alert a CAP Update or Cancel refers to: raised from one of `identifiers` of
    the same sender (an identifier is unique only for its sender: another agency's document
    naming it refers to something else)."""
    if not identifiers:
        return None
    return session.exec(
        select(Alert).where(
            col(Alert.cap_identifier).in_(identifiers),
            Alert.cap_sender == sender,
            Alert.status == AlertStatus.active,
        )
    ).first()
