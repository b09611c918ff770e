"""The AWS :class:`~cloudcircuit.providers.Enforcer`: resolve by selectors, act in batches,
restore exactly.

Actions: ``tag`` (EC2 CreateTags, at most 1,000 IDs per call; Auto Scaling CreateOrUpdateTags;
EKS TagResource; everything else through the Resource Groups Tagging API, at most 20 ARNs per
call), and ``stop`` / ``scale_down`` (the same thing: bring the resource to zero capacity - stop
EC2 and RDS instances, ASG min/desired/max to 0, ECS desired count 0, Lambda reserved
concurrency 0, EKS node group min/desired 0).

Dry-run resolves targets and, where the API offers it (EC2 StopInstances / CreateTags with
DryRun=True), probes the permission: ``dry_run`` when it would be allowed, ``denied`` when not.
A batch that fails is retried one resource at a time, so one bad resource is reported alone.
Across accounts, the enforcer assumes ``role_name`` in each account (see :mod:`.orgs`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloudcircuit.errors import EnforcementError, InputError
from cloudcircuit.providers import ActionOutcome, ActionStatus, Resource, TargetSelector
from cloudcircuit_aws.clients import Clients, aws_error_code
from cloudcircuit_aws.orgs import AccountSet
from cloudcircuit_aws.resources import HANDLERS, Ec2Instances, Handler, chunks

__all__ = [
    "RGTA_BATCH",
    "TAG_BATCH_EC2",
    "AwsEnforcer",
]

TAG_BATCH_EC2 = 1000
RGTA_BATCH = 20
_ZERO_ACTIONS = ("stop", "scale_down")
_RECENT_SECONDS = 5.0
_RGTA_TYPES = ("ecs:service", "lambda:function", "rds:db")


def _outcome(
    resource: Resource,
    action: str,
    status: ActionStatus,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> ActionOutcome:
    return ActionOutcome(
        resource=resource,
        action=action,
        status=status,
        before=dict(before or {}),
        after=dict(after or {}),
        error=error,
    )


def _describe_error(exc: BaseException) -> str:
    code = aws_error_code(exc)
    return f"{code}: {exc}" if code else str(exc)


@dataclass
class AwsEnforcer:
    """Enforcer over the accounts of ``accounts`` and the ``regions`` listed."""

    accounts: AccountSet = field(default_factory=AccountSet)
    regions: tuple[str, ...] = ("us-east-1",)
    provider: str = "aws"
    #: per-account / per-region failures of the last resolve (reported, not raised)
    resolve_errors: list[str] = field(default_factory=list)
    #: states read by the last capture_batch, reused by an apply_batch right after it (the
    #: executor journals the state it captured, then acts: one read instead of two)
    _recent: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict, repr=False)
    _recent_at: float = field(default=0.0, repr=False)

    # -- resolve --------------------------------------------------------------------------

    def _handler(self, type_: str) -> Handler:
        handler = HANDLERS.get(type_)
        if handler is None:
            raise InputError(
                f"resource type {type_!r}: the AWS enforcer supports {', '.join(HANDLERS)}"
            )
        return handler

    def resolve(self, selector: TargetSelector) -> list[Resource]:
        types = selector.resource_types or tuple(HANDLERS)
        handlers = [self._handler(t) for t in types]
        regions = [r for r in self.regions if not selector.regions or r in selector.regions]
        self.resolve_errors = []

        def one_account(clients: Clients) -> list[Resource]:
            found: list[Resource] = []
            for region in regions:
                for handler in handlers:
                    try:
                        found.extend(handler.discover(clients, region))
                    except Exception as exc:
                        self.resolve_errors.append(
                            f"account {clients.account or 'default'} {region} {handler.type}: "
                            f"{_describe_error(exc)}"
                        )
            return found

        results, errors = self.accounts.map(one_account, only=selector.accounts)
        self.resolve_errors.extend(errors)
        out = [r for found in results for r in found if selector.matches(r)]
        return sorted(out, key=lambda r: (r.account or "", r.region or "", r.type, r.id))

    # -- capture --------------------------------------------------------------------------

    def capture(self, resource: Resource) -> dict[str, Any]:
        return self.capture_batch([resource])[0]

    def capture_batch(self, resources: Sequence[Resource]) -> list[dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for (account, type_), group in _groups(resources).items():
            try:
                states: list[dict[str, Any]] = self._handler(type_).capture(
                    self.accounts.clients(account), group
                )
            except EnforcementError:
                raise
            except Exception as exc:
                raise EnforcementError(
                    f"cannot read the state of {len(group)} {type_}: {_describe_error(exc)}"
                ) from exc
            for r, state in zip(group, states, strict=True):
                out[id(r)] = state
        self._recent = {(r.type, r.id): out[id(r)] for r in resources}
        self._recent_at = time.monotonic()
        return [out[id(r)] for r in resources]

    def _fresh_states(self, group: Sequence[Resource]) -> list[dict[str, Any]] | None:
        """States captured for exactly these resources less than 5 s ago, else None."""
        if time.monotonic() - self._recent_at > _RECENT_SECONDS:
            return None
        keys = [(r.type, r.id) for r in group]
        if not all(k in self._recent for k in keys):
            return None
        return [self._recent.pop(k) for k in keys]

    # -- apply ----------------------------------------------------------------------------

    def apply(
        self, action: str, resource: Resource, params: Mapping[str, Any], *, dry_run: bool
    ) -> ActionOutcome:
        return self.apply_batch(action, [resource], params, dry_run=dry_run)[0]

    def apply_batch(
        self,
        action: str,
        resources: Sequence[Resource],
        params: Mapping[str, Any],
        *,
        dry_run: bool,
    ) -> list[ActionOutcome]:
        if action not in ("tag", *_ZERO_ACTIONS):
            raise InputError(f"action {action!r}: expected tag, stop or scale_down")
        out: dict[int, ActionOutcome] = {}
        for (account, type_), group in _groups(resources).items():
            clients = self.accounts.clients(account)
            handler = self._handler(type_)
            states: list[dict[str, Any]]
            try:
                states = self._fresh_states(group) or self.capture_batch(group)
            except EnforcementError:
                states = []
                for r in group:
                    try:
                        states.append(self.capture(r))
                    except EnforcementError as exc:
                        out[id(r)] = _outcome(r, action, "failed", error=str(exc))
                        states.append({})
            live = [(r, s) for r, s in zip(group, states, strict=True) if id(r) not in out]
            if action == "tag":
                results = self._tag(clients, type_, live, params, dry_run=dry_run)
            else:
                results = self._zero(clients, handler, live, action, dry_run=dry_run)
            for outcome in results:
                out[id(outcome.resource)] = outcome
        return [out[id(r)] for r in resources]

    def _zero(
        self,
        clients: Clients,
        handler: Handler,
        live: list[tuple[Resource, dict[str, Any]]],
        action: str,
        *,
        dry_run: bool,
    ) -> list[ActionOutcome]:
        results: list[ActionOutcome] = []
        todo = []
        for r, state in live:
            if handler.is_zero(state):
                results.append(_outcome(r, action, "unchanged", state, state))
            else:
                todo.append((r, state))
        if not todo:
            return results
        if dry_run:
            return results + self._probe(clients, handler, todo, action)
        try:
            handler.zero(clients, [r for r, _ in todo])
        except Exception:
            if len(todo) == 1:
                r, state = todo[0]
                try:
                    handler.zero(clients, [r])
                except Exception as exc:
                    return [
                        *results,
                        _outcome(r, action, "failed", state, error=_describe_error(exc)),
                    ]
            else:
                for r, state in todo:
                    results.extend(
                        self._zero(clients, handler, [(r, state)], action, dry_run=False)
                    )
                return results
        afters = _safe_capture(handler, clients, [r for r, _ in todo])
        for (r, state), after in zip(todo, afters, strict=True):
            results.append(_outcome(r, action, "done", state, after))
        return results

    def _probe(
        self,
        clients: Clients,
        handler: Handler,
        todo: list[tuple[Resource, dict[str, Any]]],
        action: str,
    ) -> list[ActionOutcome]:
        if not isinstance(handler, Ec2Instances):
            return [_outcome(r, action, "dry_run", s, s) for r, s in todo]
        try:
            handler.probe(clients, [r for r, _ in todo])
        except Exception as exc:
            code = aws_error_code(exc)
            if code == "DryRunOperation":
                return [_outcome(r, action, "dry_run", s, s) for r, s in todo]
            status: ActionStatus = "denied" if code == "UnauthorizedOperation" else "failed"
            return [_outcome(r, action, status, s, s, _describe_error(exc)) for r, s in todo]
        return [_outcome(r, action, "dry_run", s, s) for r, s in todo]

    # -- tagging --------------------------------------------------------------------------

    def _tag(
        self,
        clients: Clients,
        type_: str,
        live: list[tuple[Resource, dict[str, Any]]],
        params: Mapping[str, Any],
        *,
        dry_run: bool,
    ) -> list[ActionOutcome]:
        key = str(params.get("key", "cloudcircuit:throttled"))
        value = str(params.get("value", "true"))
        results: list[ActionOutcome] = []
        todo: list[tuple[Resource, dict[str, Any]]] = []
        for r, state in live:
            if dict(state.get("tags", {})).get(key) == value:
                results.append(_outcome(r, "tag", "unchanged", state, state))
            else:
                todo.append((r, state))
        if not todo:
            return results
        size = TAG_BATCH_EC2 if type_ == "ec2:instance" else RGTA_BATCH
        for part in chunks(todo, size):
            results.extend(self._tag_chunk(clients, type_, list(part), key, value, dry_run))
        return results

    def _tag_chunk(
        self,
        clients: Clients,
        type_: str,
        part: list[tuple[Resource, dict[str, Any]]],
        key: str,
        value: str,
        dry_run: bool,
    ) -> list[ActionOutcome]:
        def after(state: dict[str, Any]) -> dict[str, Any]:
            return {**state, "tags": {**dict(state.get("tags", {})), key: value}}

        if dry_run and type_ != "ec2:instance":
            return [_outcome(r, "tag", "dry_run", s, s) for r, s in part]
        try:
            failed = _write_tags(clients, type_, [r for r, _ in part], {key: value}, dry_run)
        except Exception as exc:
            code = aws_error_code(exc)
            if dry_run and code == "DryRunOperation":
                return [_outcome(r, "tag", "dry_run", s, s) for r, s in part]
            if dry_run or len(part) == 1:
                status: ActionStatus = "denied" if "Unauthorized" in code else "failed"
                return [_outcome(r, "tag", status, s, s, _describe_error(exc)) for r, s in part]
            results: list[ActionOutcome] = []
            for item in part:
                results.extend(self._tag_chunk(clients, type_, [item], key, value, False))
            return results
        return [
            _outcome(r, "tag", "failed", s, s, failed[r.id])
            if r.id in failed
            else _outcome(r, "tag", "done", s, after(s))
            for r, s in part
        ]

    # -- restore --------------------------------------------------------------------------

    def restore(self, resource: Resource, before: Mapping[str, Any]) -> ActionOutcome:
        handler = self._handler(resource.type)
        clients = self.accounts.clients(resource.account)
        try:
            current = self.capture(resource)
        except EnforcementError as exc:
            return _outcome(resource, "restore", "failed", error=str(exc))
        wanted = dict(before)
        if current == wanted:
            return _outcome(resource, "restore", "unchanged", current, current)
        try:
            state_keys = [k for k in wanted if k != "tags"]
            if any(current.get(k) != wanted.get(k) for k in state_keys):
                handler.put_back(clients, resource, wanted)
            old_tags = dict(wanted.get("tags", {}))
            now_tags = dict(current.get("tags", {}))
            if old_tags != now_tags:
                changed = {k: v for k, v in old_tags.items() if now_tags.get(k) != v}
                removed = [k for k in now_tags if k not in old_tags]
                if changed:
                    failed = _write_tags(clients, resource.type, [resource], changed, False)
                    if failed:
                        raise EnforcementError(failed[resource.id])
                if removed:
                    _delete_tags(clients, resource, removed)
        except Exception as exc:
            return _outcome(resource, "restore", "failed", current, error=_describe_error(exc))
        return _outcome(resource, "restore", "done", current, self.capture(resource))


def _groups(resources: Sequence[Resource]) -> dict[tuple[str | None, str], list[Resource]]:
    out: dict[tuple[str | None, str], list[Resource]] = {}
    for r in resources:
        out.setdefault((r.account, r.type), []).append(r)
    return out


def _safe_capture(
    handler: Handler, clients: Clients, resources: list[Resource]
) -> list[dict[str, Any]]:
    try:
        return handler.capture(clients, resources)
    except Exception as exc:
        return [{"unreadable": _describe_error(exc)} for _ in resources]


def _write_tags(
    clients: Clients,
    type_: str,
    resources: Sequence[Resource],
    tags: Mapping[str, str],
    dry_run: bool,
) -> dict[str, str]:
    """Tag ``resources`` (one batch call per region); returns ``{id: error}`` of failures."""
    failed: dict[str, str] = {}
    by_region: dict[str | None, list[Resource]] = {}
    for r in resources:
        by_region.setdefault(r.region, []).append(r)
    for region, group in by_region.items():
        if type_ == "ec2:instance":
            clients.client("ec2", region).create_tags(
                Resources=[r.id for r in group],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                DryRun=dry_run,
            )
        elif type_ == "autoscaling:group":
            clients.client("autoscaling", region).create_or_update_tags(
                Tags=[
                    {
                        "ResourceId": r.id,
                        "ResourceType": "auto-scaling-group",
                        "Key": k,
                        "Value": v,
                        "PropagateAtLaunch": False,
                    }
                    for r in group
                    for k, v in tags.items()
                ]
            )
        elif type_ == "eks:nodegroup":
            for r in group:
                clients.client("eks", region).tag_resource(resourceArn=r.id, tags=dict(tags))
        elif type_ in _RGTA_TYPES:
            answer = clients.client("resourcegroupstaggingapi", region).tag_resources(
                ResourceARNList=[r.id for r in group], Tags=dict(tags)
            )
            for arn, problem in (answer.get("FailedResourcesMap") or {}).items():
                failed[arn] = f"{problem.get('ErrorCode')}: {problem.get('ErrorMessage')}"
        else:
            raise InputError(f"cannot tag resource type {type_!r}")
    return failed


def _delete_tags(clients: Clients, resource: Resource, keys: list[str]) -> None:
    region = resource.region
    if resource.type == "ec2:instance":
        clients.client("ec2", region).delete_tags(
            Resources=[resource.id], Tags=[{"Key": k} for k in keys]
        )
    elif resource.type == "autoscaling:group":
        clients.client("autoscaling", region).delete_tags(
            Tags=[
                {"ResourceId": resource.id, "ResourceType": "auto-scaling-group", "Key": k}
                for k in keys
            ]
        )
    elif resource.type == "eks:nodegroup":
        clients.client("eks", region).untag_resource(resourceArn=resource.id, tagKeys=keys)
    else:
        answer = clients.client("resourcegroupstaggingapi", region).untag_resources(
            ResourceARNList=[resource.id], TagKeys=keys
        )
        failed = answer.get("FailedResourcesMap") or {}
        if failed:
            raise EnforcementError(f"untag {resource.id}: {failed}")
