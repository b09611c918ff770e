"""SLOs and error budgets (the slo-budget-tracker 0.1 API), with stores for high volume.

``SLOTracker`` records events and reports snapshots and burn-rate alerts; ``SLORegistry``
holds many; ``SLOMiddleware`` records HTTP outcomes (pure ASGI); ``PrometheusExporter`` renders
the gauges. Stores: ``InMemoryStore`` (exact, the 0.1 default), ``BucketedStore`` (fixed memory
per window, O(buckets) snapshot) and ``RedisStore`` (many processes share one SLO).
"""

from cloudcircuit.slo.exporter import PrometheusExporter
from cloudcircuit.slo.middleware import SLOMiddleware, default_classifier
from cloudcircuit.slo.model import (
    BurnRateAlert,
    BurnRateSample,
    Observation,
    SLODefinition,
    SLOSnapshot,
)
from cloudcircuit.slo.redis_store import RedisStore
from cloudcircuit.slo.store import (
    BucketedStore,
    CountingStore,
    InMemoryStore,
    ObservationStore,
    default_resolution,
)
from cloudcircuit.slo.tracker import SLORegistry, SLOTracker

__all__ = [
    "BucketedStore",
    "BurnRateAlert",
    "BurnRateSample",
    "CountingStore",
    "InMemoryStore",
    "Observation",
    "ObservationStore",
    "PrometheusExporter",
    "RedisStore",
    "SLODefinition",
    "SLOMiddleware",
    "SLORegistry",
    "SLOSnapshot",
    "SLOTracker",
    "default_classifier",
    "default_resolution",
]
