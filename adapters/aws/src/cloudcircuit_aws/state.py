"""A DynamoDB :class:`~cloudcircuit.providers.StateStore` for Lambda deployments.

One table (``pk`` hash key, ``sk`` range key, TTL attribute ``expires_at``; Terraform creates
it). Writes that must not race are conditional: ``set_if_absent`` (alert de-duplication,
locks) uses ``attribute_not_exists``, journal lines are never overwritten, counters use an
atomic ``ADD``. Expired items are ignored on read (DynamoDB's TTL deletes them lazily).

URL: ``dynamodb://TABLE`` or ``dynamodb://TABLE?region=eu-west-1``.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

from cloudcircuit.errors import InputError, StateError
from cloudcircuit.providers import JournalEntry, Resource
from cloudcircuit_aws.clients import Clients, aws_error_code

__all__ = [
    "DynamoDBStateStore",
    "entry_from_item",
    "entry_to_item",
    "open_dynamodb_state",
]


def entry_to_item(entry: JournalEntry) -> dict[str, Any]:
    r = entry.resource
    body = {
        "run_id": entry.run_id,
        "seq": entry.seq,
        "phase": entry.phase,
        "action": entry.action,
        "resource": {
            "provider": r.provider,
            "type": r.type,
            "id": r.id,
            "region": r.region,
            "account": r.account,
            "tags": dict(r.tags),
            "name": r.name,
        },
        "state": dict(entry.state),
        "status": entry.status,
        "at": entry.at.isoformat(),
        "error": entry.error,
    }
    return {
        "pk": {"S": f"journal#{entry.run_id}"},
        "sk": {"S": f"{entry.seq:09d}#{entry.phase}"},
        "body": {"S": json.dumps(body, default=str)},
    }


def entry_from_item(item: dict[str, Any]) -> JournalEntry:
    body = json.loads(item["body"]["S"])
    res = body["resource"]
    return JournalEntry(
        run_id=body["run_id"],
        seq=int(body["seq"]),
        phase=body["phase"],
        action=body["action"],
        resource=Resource(
            provider=res["provider"],
            type=res["type"],
            id=res["id"],
            region=res.get("region"),
            account=res.get("account"),
            tags=res.get("tags") or {},
            name=res.get("name"),
        ),
        state=body["state"],
        status=body["status"],
        at=datetime.fromisoformat(body["at"]),
        error=body.get("error"),
    )


class DynamoDBStateStore:
    """StateStore over one DynamoDB table (see the module docstring for the layout)."""

    def __init__(self, table: str, *, clients: Clients | None = None) -> None:
        if not table:
            raise InputError("dynamodb state: a table name is required (dynamodb://TABLE)")
        self.table = table
        self.clients = clients or Clients()

    def _db(self) -> Any:
        return self.clients.client("dynamodb")

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(TableName=self.table, **kwargs)
        except Exception as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                raise
            raise StateError(f"dynamodb table {self.table}: {what} failed: {exc}") from exc

    @staticmethod
    def _key(key: str) -> dict[str, Any]:
        return {"pk": {"S": f"kv#{key}"}, "sk": {"S": "-"}}

    def get(self, key: str) -> Any | None:
        answer = self._call("GetItem", self._db().get_item, Key=self._key(key), ConsistentRead=True)
        item = answer.get("Item")
        if not item:
            return None
        expires = item.get("expires_at", {}).get("N")
        if expires is not None and float(expires) <= time.time():
            return None
        if "n" in item:
            return int(item["n"]["N"])
        return json.loads(item["value"]["S"])

    def _item(self, key: str, value: Any, ttl: float | None) -> dict[str, Any]:
        item = {**self._key(key), "value": {"S": json.dumps(value, default=str)}}
        if ttl is not None:
            item["expires_at"] = {"N": str(int(time.time() + ttl))}
        return item

    def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        self._call("PutItem", self._db().put_item, Item=self._item(key, value, ttl))

    def set_if_absent(self, key: str, value: Any, *, ttl: float | None = None) -> bool:
        try:
            self._call(
                "PutItem",
                self._db().put_item,
                Item=self._item(key, value, ttl),
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
            )
        except Exception as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def incr(self, key: str, amount: int = 1) -> int:
        answer = self._call(
            "UpdateItem",
            self._db().update_item,
            Key=self._key(key),
            UpdateExpression="ADD n :amount",
            ExpressionAttributeValues={":amount": {"N": str(int(amount))}},
            ReturnValues="UPDATED_NEW",
        )
        return int(answer["Attributes"]["n"]["N"])

    def delete(self, key: str) -> None:
        self._call("DeleteItem", self._db().delete_item, Key=self._key(key))

    def append_journal(self, entry: JournalEntry) -> None:
        try:
            self._call(
                "PutItem",
                self._db().put_item,
                Item=entry_to_item(entry),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if aws_error_code(exc) == "ConditionalCheckFailedException":
                raise StateError(
                    f"journal {entry.run_id} seq {entry.seq} {entry.phase} already written"
                ) from exc
            raise
        self._call(
            "PutItem",
            self._db().put_item,
            Item={
                "pk": {"S": "runs"},
                "sk": {"S": entry.run_id},
                "value": {"S": json.dumps({"at": entry.at.isoformat()})},
            },
        )

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            answer = self._call("Query", self._db().query, **kwargs, **extra)
            items.extend(answer.get("Items", []))
            start = answer.get("LastEvaluatedKey")
            if not start:
                return items

    def journal(self, run_id: str) -> list[JournalEntry]:
        items = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"journal#{run_id}"}},
            ConsistentRead=True,
        )
        entries = [entry_from_item(i) for i in items]
        return sorted(entries, key=lambda e: (e.at, e.seq, e.phase != "before"))

    def runs(self, limit: int = 20) -> list[str]:
        items = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "runs"}},
            ScanIndexForward=False,
        )
        return [i["sk"]["S"] for i in items][:limit]

    def close(self) -> None:
        """Nothing to release (boto3 clients are pooled)."""


def open_dynamodb_state(url: str) -> DynamoDBStateStore:
    """Entry point of the ``cloudcircuit.state`` group for the ``dynamodb`` scheme."""
    parsed = urlparse(url)
    if parsed.scheme != "dynamodb":
        raise InputError(f"state URL {url!r}: expected dynamodb://TABLE")
    table = parsed.netloc or parsed.path.lstrip("/")
    region = parse_qs(parsed.query).get("region", ["us-east-1"])[0]
    return DynamoDBStateStore(table, clients=Clients(region=region))
