"""What an alert is, and how any actor raises one without waiting.

Owns: `Severity`, `Alert` (the message the alerter actor receives; severity, kind, subject,
details and an optional dedup key) and `AlertSink`, the one call every other actor makes:
``sink(Alert(...))``. A sink never blocks and never raises: raising an alert must not stall a
trade or a price poll (issue 6: "never blocking the sender"). `alerter_sink(ref)` is the sink
that tells the alerter actor; when its mailbox is full the alert is logged and counted as dropped.

May import: the standard library, attrs, prometheus_client, `supervisors`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

import attrs
import trio
from prometheus_client import Counter

from supervisors.registry import ActorNotFound, ActorRef

__all__ = ["Alert", "AlertSink", "Severity", "alerter_sink", "null_sink"]

log = logging.getLogger("xorj.alerts")

ALERTS_DROPPED: Final = Counter(
    "xorj_alerts_dropped_total", "Alerts that could not be handed to the alerter (mailbox full or absent)")


class Severity(enum.StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


@attrs.frozen
class Alert:
    """One thing an operator should know. ``kind`` is a stable machine name (``trade_failed``,
    ``breaker_opened``, ``kill_switch``, ``actor_restarts``, ``dependency_down``,
    ``reconcile_anomaly``, ``price_rejected``...); ``subject`` what it is about (a user id, a
    trade id, a breaker's name, a mint). Alerts with the same ``dedup_key`` (default: kind and
    subject) within the alerter's window are one alert."""

    severity: Severity
    kind: str
    subject: str
    details: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    dedup_key: str | None = None

    @property
    def key(self) -> str:
        return self.dedup_key if self.dedup_key is not None else f"{self.kind}:{self.subject}"


class AlertSink(Protocol):
    def __call__(self, alert: Alert) -> None: ...


def null_sink(alert: Alert) -> None:
    """A sink that only logs (tools and tests that run without an alerter)."""
    log.warning("alert", extra={"severity": alert.severity.value, "kind": alert.kind,
                                "subject": alert.subject, "details": dict(alert.details)})


def alerter_sink(ref: ActorRef) -> AlertSink:
    """Tell the alerter at ``ref`` without waiting; a full or missing mailbox drops (and logs) it."""

    def sink(alert: Alert) -> None:
        try:
            ref.tell_nowait(alert)
        except (trio.WouldBlock, ActorNotFound):
            ALERTS_DROPPED.inc()
            log.error("alert dropped: the alerter cannot take it now",
                      extra={"severity": alert.severity.value, "kind": alert.kind, "subject": alert.subject})

    return sink
