"""Supervision with Erlang/OTP semantics and the messaging kernel it owns.

- `supervisor`: `Supervisor`, `DynamicSupervisor`, child specs, strategies, restart types,
  intensity and escalation, backoff, ordered start and reverse shutdown.
- `mailbox`, `registry`, `request`, `context`: mailboxes (bounded and conflating) that belong to a
  child's name and outlive its incarnations, the registry of names, `tell`/`ask`.
- `breaker`: the circuit breaker any actor uses for any dependency.
- `events`, `metrics`: what supervision reports -- events on a bus, Prometheus metrics.

Imports nothing of the project: it is the bottom of the dependency graph.
"""

from supervisors.backoff import backoff_delay
from supervisors.breaker import BreakerOpen, BreakerPolicy, BreakerState, CircuitBreaker
from supervisors.context import ChildContext
from supervisors.events import EventBus, EventKind, SupervisionEvent
from supervisors.registry import ActorNotFound, ActorRef, DuplicateName, Registry, ask
from supervisors.request import ActorDied, ActorStopped, AskTimeout, Request
from supervisors.supervisor import (
    BackoffPolicy,
    ChildSpec,
    CrashChild,
    DynamicSupervisor,
    Restart,
    RestartChild,
    StartChild,
    Strategy,
    Supervisor,
    SupervisorEscalated,
    TerminateChild,
    TreeNode,
)

__all__ = [
    "ActorDied",
    "ActorNotFound",
    "ActorRef",
    "ActorStopped",
    "AskTimeout",
    "BackoffPolicy",
    "BreakerOpen",
    "BreakerPolicy",
    "BreakerState",
    "ChildContext",
    "ChildSpec",
    "CircuitBreaker",
    "CrashChild",
    "DuplicateName",
    "DynamicSupervisor",
    "EventBus",
    "EventKind",
    "Registry",
    "Request",
    "Restart",
    "RestartChild",
    "StartChild",
    "Strategy",
    "SupervisionEvent",
    "Supervisor",
    "SupervisorEscalated",
    "TerminateChild",
    "TreeNode",
    "ask",
    "backoff_delay",
]
