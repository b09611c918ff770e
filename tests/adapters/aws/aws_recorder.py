"""The set every AWS operation of the test session is recorded into (by conftest's session
fixture, read by test_iam_coverage). A module with a unique name, so it is never confused with
another folder's conftest."""

from __future__ import annotations

#: (service, operation) of every call any test made through cloudcircuit_aws clients
RECORDED: set[tuple[str, str]] = set()
