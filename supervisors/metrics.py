"""Prometheus metrics of the actor runtime and the supervisors (names `xorj_<noun>_<unit>`).

Counters are updated where things happen; gauges that describe current state (mailbox depth,
children, intensity used) are read from the live registry at scrape time by `RuntimeCollector`,
so the hot path pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

ACTOR_STARTS = Counter("xorj_actor_starts_total", "Incarnations started", ["actor"])
ACTOR_EXITS = Counter("xorj_actor_exits_total", "Incarnations ended, by how", ["actor", "how"])
ACTOR_CRASHES = Counter("xorj_actor_crashes_total", "Incarnations that crashed", ["actor"])
ACTOR_RESTARTS = Counter("xorj_actor_restarts_total", "Restarts by a supervisor", ["actor"])
MESSAGES_HANDLED = Counter("xorj_actor_messages_total", "Messages handled", ["actor"])
HANDLING_SECONDS = Histogram(
    "xorj_actor_handling_seconds",
    "Time an actor spent on one message",
    ["actor"],
    buckets=(1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
)
ESCALATIONS = Counter("xorj_supervisor_escalations_total", "Intensity exceeded", ["supervisor"])
EVENTS_DROPPED = Counter(
    "xorj_supervision_events_dropped_total", "Events a slow subscriber did not take"
)


class RuntimeCollector(Collector):
    """Reads current state from callables registered by the running supervisors."""

    def __init__(self) -> None:
        self.mailbox_depths: Callable[[], Iterable[tuple[str, int]]] = lambda: ()
        self.supervisor_children: Callable[[], Iterable[tuple[str, int, int]]] = lambda: ()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("xorj_actor_mailbox_depth", "Messages waiting", labels=["actor"])
        for name, n in self.mailbox_depths():
            depth.add_metric([name], n)
        yield depth
        children = GaugeMetricFamily(
            "xorj_supervisor_children", "Children under a supervisor", labels=["supervisor"]
        )
        used = GaugeMetricFamily(
            "xorj_supervisor_intensity_used",
            "Restarts inside the intensity window",
            labels=["supervisor"],
        )
        for name, n_children, n_used in self.supervisor_children():
            children.add_metric([name], n_children)
            used.add_metric([name], n_used)
        yield children
        yield used


COLLECTOR = RuntimeCollector()
REGISTRY.register(COLLECTOR)
