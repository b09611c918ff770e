"""The one exception hierarchy of cloudcircuit.

Callers catch cloudcircuit errors only: adapters translate SDK exceptions at one seam
(``raise SourceError(...) from exc``) so that boto3, google-cloud or azure exceptions never
leak out of an adapter.

::

    CloudCircuitError
    ├── InputError (ValueError)             bad argument to a public function (0.3 API raises it)
    │   ├── ConfigError                     a policy or settings file is invalid (each problem
    │   │                                   with its path)
    │   └── DataError                       bad spend data: names file, row and field
    │       ├── SchemaError                 required columns missing for the declared format/version
    │       └── CurrencyMismatchError       two currencies in one series: names the scope
    ├── ProviderError                       talking to a cloud provider failed
    │   ├── ProviderNotInstalledError       a policy names a provider whose package is absent
    │   ├── SourceError                     reading spend failed (a partial read is reported)
    │   │   └── ApiBudgetExceededError      the per-scan API spend cap would be exceeded
    │   └── ThrottledError                  the provider kept throttling after our retries
    ├── EnforcementError
    │   ├── SafetyLimitError                max_resources exceeded: the whole plan is aborted
    │   └── RestoreError                    a journaled run cannot be put back
    ├── StateError                          the state store failed or is inconsistent
    ├── AlertDeliveryError                  a sink kept failing after its retries
    └── QuotaError                          runtime quota ledger
        ├── QuotaExceededError              a reservation/charge was refused by a scope
        │   └── BudgetExceededError         coreason-budget 0.4 name (cloudcircuit.quota)
        ├── LedgerUnavailableError          backend unreachable or late: fail closed
        ├── ReservationError                commit/release of an unknown or finished reservation
        └── PricingError                    a cost cannot be priced (unknown model)

Every error carries a human message that says what was wrong and where.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AlertDeliveryError",
    "ApiBudgetExceededError",
    "BudgetExceededError",
    "CloudCircuitError",
    "ConfigError",
    "CurrencyMismatchError",
    "DataError",
    "EnforcementError",
    "InputError",
    "LedgerUnavailableError",
    "PricingError",
    "ProviderError",
    "ProviderNotInstalledError",
    "QuotaError",
    "QuotaExceededError",
    "ReservationError",
    "RestoreError",
    "SafetyLimitError",
    "SchemaError",
    "SourceError",
    "StateError",
    "ThrottledError",
]


class CloudCircuitError(Exception):
    """Base class of every error cloudcircuit raises on purpose."""


class InputError(CloudCircuitError, ValueError):
    """A public function was given an invalid argument."""


class ConfigError(InputError):
    """A configuration (policy file, settings) is invalid.

    ``problems`` lists ``(path, message)`` pairs such as ``("budgets[2].amount",
    "must be greater than 0")``; ``source`` names the file when there is one.
    """

    def __init__(
        self,
        problems: Sequence[tuple[str, str]] | str,
        *,
        source: str | None = None,
    ) -> None:
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems: list[tuple[str, str]] = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        lines = [f"{path}: {msg}" if path else msg for path, msg in self.problems]
        head = f"{self.source}: " if self.source else ""
        if len(lines) == 1:
            return head + lines[0]
        return head + f"{len(lines)} problems\n" + "\n".join(f"  {line}" for line in lines)


class DataError(InputError):
    """Spend data is malformed; the message names the file, row and field where known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.field = field
        where = []
        if file:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if field:
            where.append(f"field {field}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class SchemaError(DataError):
    """Required columns are missing for the declared format or version."""


class CurrencyMismatchError(DataError):
    """Two currencies were found in one series; the message names the scope."""


class ProviderError(CloudCircuitError):
    """Talking to a cloud provider failed."""


class ProviderNotInstalledError(ProviderError):
    """A policy names a provider whose adapter package is not installed."""

    def __init__(self, provider: str, package: str) -> None:
        self.provider = provider
        self.package = package
        super().__init__(f"provider {provider!r} is not installed: pip install {package}")


class SourceError(ProviderError):
    """Reading spend failed. ``partial`` holds what was read before the failure, if any."""


class ApiBudgetExceededError(SourceError):
    """The next provider API call would exceed the per-scan API spend cap."""


class ThrottledError(ProviderError):
    """The provider kept throttling after the configured retries."""


class EnforcementError(CloudCircuitError):
    """An enforcement plan could not be carried out."""


class SafetyLimitError(EnforcementError):
    """A safety rail (max_resources count or percent) aborted the plan before any action."""


class RestoreError(EnforcementError):
    """A journaled run cannot be restored."""


class StateError(CloudCircuitError):
    """The state store failed or holds inconsistent data."""


class AlertDeliveryError(CloudCircuitError):
    """An alert sink kept failing after its retries."""


class QuotaError(CloudCircuitError):
    """Base of runtime quota errors."""


class QuotaExceededError(QuotaError):
    """A scope of the chain refused a reservation or charge."""


class BudgetExceededError(QuotaExceededError):
    """coreason-budget 0.4 compatible name: a budget limit would be passed."""


class LedgerUnavailableError(QuotaError):
    """The quota ledger could not be reached in time (fail closed)."""


class ReservationError(QuotaError):
    """A commit or release names an unknown reservation, or one already released/denied.

    ``state`` is what the ledger knows of it: ``unknown``, ``released``, ``denied``,
    ``charged``, ``expired`` or ``committed``.
    """

    def __init__(self, message: str, *, state: str) -> None:
        self.state = state
        super().__init__(message)


class PricingError(QuotaError, ValueError):
    """A cost cannot be priced (for example an unknown model)."""
