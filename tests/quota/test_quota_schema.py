"""schemathesis against the service's own OpenAPI document, over HTTP to a real uvicorn server.

Bounded examples per operation; every answer must be a non-5xx whose status code, content
type and body match the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from quota_helpers import serve_app, three_levels
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cloudcircuit.quota import ApiKey, ApiKeyStore, Ledger, Pricing, hash_api_key
from cloudcircuit.quota.service import create_app

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
AUTH = {"Authorization": "Bearer schema-admin"}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    db: Path = tmp_path_factory.mktemp("schema") / "quota.db"
    ledger = Ledger(f"sqlite:///{db}", three_levels(1000.0, 50.0, 5.0))
    keys = ApiKeyStore([ApiKey("admin", hash_api_key("schema-admin"), admin=True)])
    pricing = Pricing({"m": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}})
    with serve_app(create_app(ledger, keys, pricing=pricing)) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


def test_api_matches_its_openapi_document(api_schema: Any) -> None:
    # schemathesis's pytest plugin does not run under pytest 9: drive its strategies directly
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    seen: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: Any) -> None:
            response = case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=10)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1

        exercise()
    # both accepted and rejected inputs were exercised
    assert seen.get(200, 0) > 20 and seen.get(422, 0) > 20, seen
