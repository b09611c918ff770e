"""Organization-wide work: member accounts (Organizations), a role assumed in each (STS),
bounded concurrency, and one account's failure reported without stopping the others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from cloudcircuit.errors import ProviderError
from cloudcircuit_aws.clients import Clients, aws_error_code

__all__ = [
    "AccountSet",
    "list_member_accounts",
]

T = TypeVar("T")


def list_member_accounts(clients: Clients) -> list[str]:
    """IDs of the ACTIVE accounts of the organization (every ListAccounts page)."""
    try:
        org = clients.client("organizations")
        out: list[str] = []
        for page in org.get_paginator("list_accounts").paginate():
            out.extend(a["Id"] for a in page.get("Accounts", []) if a.get("Status") == "ACTIVE")
    except Exception as exc:
        code = aws_error_code(exc)
        raise ProviderError(f"Organizations ListAccounts failed ({code or exc}): {exc}") from exc
    return sorted(out)


@dataclass
class AccountSet:
    """The accounts enforcement and scans work on.

    With no ``role_name`` it is just the caller's own account (``base``). With ``role_name``,
    each account of ``accounts`` (or, when ``organization`` is true, every ACTIVE member of the
    organization) is reached through ``arn:aws:iam::ACCOUNT:role/ROLE_NAME``.
    """

    base: Clients = field(default_factory=Clients)
    role_name: str | None = None
    accounts: tuple[str, ...] = ()
    organization: bool = False
    max_workers: int = 4
    _assumed: dict[str, Clients] = field(default_factory=dict, repr=False)

    def members(self) -> list[str]:
        if self.role_name is None:
            return []
        if self.organization and not self.accounts:
            self.accounts = tuple(list_member_accounts(self.base))
        return list(self.accounts)

    def clients(self, account: str | None) -> Clients:
        """Clients for ``account``: assumed once and reused; the base account otherwise."""
        if account is None or self.role_name is None or account == self.base.account:
            return self.base
        found = self._assumed.get(account)
        if found is None:
            found = self.base.assume(f"arn:aws:iam::{account}:role/{self.role_name}")
            self._assumed[account] = found
        return found

    def map(
        self, work: Callable[[Clients], T], *, only: Sequence[str] = ()
    ) -> tuple[list[T], list[str]]:
        """Run ``work`` once per account (at most ``max_workers`` at a time).

        Returns the results and one message per account that failed (assume-role or work).
        """
        members = self.members()
        if not members:
            return [work(self.base)], []
        chosen = [a for a in members if not only or a in only]

        def run(account: str) -> tuple[T | None, str | None]:
            try:
                return work(self.clients(account)), None
            except Exception as exc:
                return None, f"account {account}: {exc}"

        results: list[T] = []
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=max(1, self.max_workers)) as pool:
            for value, error in pool.map(run, chosen):
                if error is not None:
                    errors.append(error)
                elif value is not None:
                    results.append(value)
        return results, errors
