"""Contracts between the core and providers, and discovery through entry points.

A provider package (cloudcircuit-aws, ...) registers an object satisfying :class:`Provider`
under the entry-point group ``cloudcircuit.providers``. The core never imports a provider; it
loads one only when a policy names it, and a missing one fails with the package to install.

Three small Protocols are the whole contract:

- :class:`SpendSource` answers a :class:`SpendQuery` with series and :class:`SourceStats`
  (requests and their cost, bytes scanned, freshness);
- :class:`Enforcer` resolves targets by selectors and applies or restores actions;
- :class:`StateStore` keeps breaker counters, cooldowns, alert de-duplication keys, caches and
  the enforcement journal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal, Protocol, runtime_checkable

from cloudcircuit.errors import ProviderError, ProviderNotInstalledError
from cloudcircuit.spend import CostBasis, Granularity, SpendSeries

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROVIDER_PACKAGES",
    "ActionOutcome",
    "ActionStatus",
    "Enforcer",
    "FetchResult",
    "JournalEntry",
    "Provider",
    "Resource",
    "ScanAwareSource",
    "SourceStats",
    "SpendQuery",
    "SpendSource",
    "StateStore",
    "TargetSelector",
    "available_providers",
    "load_provider",
]

ENTRY_POINT_GROUP = "cloudcircuit.providers"

#: what to install for each known provider name
PROVIDER_PACKAGES: dict[str, str] = {
    "aws": "cloudcircuit-aws",
    "gcp": "cloudcircuit-gcp",
    "azure": "cloudcircuit-azure",
    "focus": "'cloudcircuit[focus]'",
}


# -- spend sources ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpendQuery:
    """What a scan asks a source for. ``end`` is exclusive; times are aware UTC.

    ``filters`` maps a dimension (``service``, ``sub_account``, ``tag:team``...) to the values
    allowed; ``group_by`` names the dimensions of the series wanted (at most two for AWS CE).
    """

    start: datetime
    end: datetime
    granularity: Granularity = Granularity.DAY
    cost_basis: CostBasis = CostBasis.BILLED
    group_by: tuple[str, ...] = ()
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class SourceStats:
    """What reading cost: provider requests and their price, bytes billed, rows, freshness."""

    source: str = ""
    requests: int = 0
    api_cost_usd: float = 0.0
    bytes_processed: int = 0
    rows_read: int = 0
    cached_buckets: int = 0
    #: newest charge time seen (how fresh the data is)
    freshness: datetime | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FetchResult:
    series: list[SpendSeries]
    stats: SourceStats


@runtime_checkable
class SpendSource(Protocol):
    """Reads spend. Must follow every page and report (not drop) a partial read."""

    name: str

    def fetch(self, query: SpendQuery) -> FetchResult: ...


@runtime_checkable
class ScanAwareSource(Protocol):
    """Optional: a source that caches in the state store and budgets its API calls per scan
    (Cost Explorer bills every page). ``run_scan`` binds the scan's store and starts the count."""

    def bind_state(self, store: StateStore) -> None: ...

    def begin_scan(self) -> None: ...


# -- enforcement --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resource:
    """A cloud resource an action may target (``type`` like ``ec2:instance``)."""

    provider: str
    type: str
    id: str
    region: str | None = None
    account: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True, slots=True)
class TargetSelector:
    """Which resources an action targets: scope plus tag selectors, never hard-coded IDs.

    ``tags`` must all match (``{"team": "ml"}``); a value of ``"*"`` means "tag present".
    Empty tuples mean "any".
    """

    resource_types: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()

    def matches(self, resource: Resource) -> bool:
        if self.resource_types and resource.type not in self.resource_types:
            return False
        if self.regions and resource.region not in self.regions:
            return False
        if self.accounts and resource.account not in self.accounts:
            return False
        for key, wanted in self.tags.items():
            if key not in resource.tags:
                return False
            if wanted != "*" and resource.tags[key] != wanted:
                return False
        return True


ActionStatus = Literal["planned", "done", "unchanged", "dry_run", "denied", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What one action did to one resource, with the states around it."""

    resource: Resource
    action: str
    status: ActionStatus
    before: Mapping[str, Any] = field(default_factory=dict)
    after: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


@runtime_checkable
class Enforcer(Protocol):
    """Provider side of enforcement. The core's enforcement module adds safety rails and the
    journal around it; an Enforcer only resolves, captures state, acts and restores."""

    provider: str

    def resolve(self, selector: TargetSelector) -> list[Resource]: ...

    def capture(self, resource: Resource) -> dict[str, Any]:
        """The state an action would change (for the journal and for restore)."""
        ...

    def apply(
        self, action: str, resource: Resource, params: Mapping[str, Any], *, dry_run: bool
    ) -> ActionOutcome: ...

    def restore(self, resource: Resource, before: Mapping[str, Any]) -> ActionOutcome: ...


# -- state --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of the enforcement journal; ``phase`` is ``before`` or ``after`` the action."""

    run_id: str
    seq: int
    phase: Literal["before", "after"]
    action: str
    resource: Resource
    state: Mapping[str, Any]
    status: str
    at: datetime
    error: str | None = None


@runtime_checkable
class StateStore(Protocol):
    """Small durable state: JSON values with optional TTL, counters, and the journal."""

    def get(self, key: str) -> Any | None: ...

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None: ...

    def set_if_absent(self, key: str, value: Any, *, ttl: float | None = None) -> bool: ...

    def incr(self, key: str, amount: int = 1) -> int: ...

    def delete(self, key: str) -> None: ...

    def append_journal(self, entry: JournalEntry) -> None: ...

    def journal(self, run_id: str) -> list[JournalEntry]: ...

    def runs(self, limit: int = 20) -> list[str]: ...

    def close(self) -> None: ...


# -- providers and discovery --------------------------------------------------------------


@runtime_checkable
class Provider(Protocol):
    """What a provider package registers under ``cloudcircuit.providers``."""

    name: str

    def source(self, settings: Mapping[str, Any]) -> SpendSource: ...

    def enforcer(self, settings: Mapping[str, Any]) -> Enforcer: ...


def _entry_points() -> Sequence[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def available_providers() -> list[str]:
    """Names registered in the ``cloudcircuit.providers`` entry-point group."""
    return sorted({ep.name for ep in _entry_points()})


def load_provider(name: str) -> Provider:
    """Load the provider registered as ``name``; absent -> the package to install."""
    for ep in _entry_points():
        if ep.name == name:
            try:
                obj = ep.load()
            except ImportError as exc:
                package = PROVIDER_PACKAGES.get(name, f"cloudcircuit-{name}")
                raise ProviderNotInstalledError(name, package) from exc
            provider = obj() if isinstance(obj, type) else obj
            if not isinstance(provider, Provider):
                raise ProviderError(
                    f"entry point {ep.value!r} for provider {name!r} is not a Provider"
                )
            return provider
    raise ProviderNotInstalledError(name, PROVIDER_PACKAGES.get(name, f"cloudcircuit-{name}"))
