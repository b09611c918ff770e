"""What the backends share beyond :class:`~cloudcircuit.providers.StateStore`: transactions.

Every built-in backend offers ``transaction()``; a third-party backend (an entry point under
``cloudcircuit.state``) may not, and :func:`transaction` then runs the block without one, so
callers can always write ``with transaction(store): ...``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, runtime_checkable

from cloudcircuit.providers import StateStore

__all__ = ["TransactionalStore", "transaction"]


@runtime_checkable
class TransactionalStore(StateStore, Protocol):
    """A store whose ``transaction()`` applies the writes inside it all or not at all."""

    def transaction(self) -> AbstractContextManager[object]: ...


@contextmanager
def transaction(store: StateStore) -> Iterator[StateStore]:
    """``store.transaction()`` when it has one, else a plain block (writes apply at once)."""
    if isinstance(store, TransactionalStore):
        with store.transaction():
            yield store
    else:
        yield store
