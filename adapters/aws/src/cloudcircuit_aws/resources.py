"""One small handler per enforceable AWS resource type: list, capture, zero, put back.

Each handler knows the state its "zero" action changes (EC2/RDS run state, ASG and EKS
min/desired/max, ECS desired count, Lambda reserved concurrency including "none") and how to
put exactly that back. Tag changes are handled by :mod:`cloudcircuit_aws.actions` (batched).
Errors are botocore ``ClientError``s here; the enforcer turns them into outcomes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from cloudcircuit.providers import Resource
from cloudcircuit_aws.clients import Clients

__all__ = [
    "EC2_BATCH",
    "HANDLERS",
    "Handler",
    "chunks",
]

#: instance IDs per DescribeInstances / StopInstances / StartInstances call
EC2_BATCH = 1000


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _tags(
    pairs: Sequence[dict[str, Any]] | None, key: str = "Key", value: str = "Value"
) -> dict[str, str]:
    return {str(p[key]): str(p.get(value, "")) for p in pairs or []}


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else None


class Handler(Protocol):
    type: str

    def discover(self, clients: Clients, region: str) -> list[Resource]: ...

    def capture(self, clients: Clients, resources: Sequence[Resource]) -> list[dict[str, Any]]: ...

    def is_zero(self, state: dict[str, Any]) -> bool: ...

    def zero(self, clients: Clients, resources: Sequence[Resource]) -> None: ...

    def put_back(self, clients: Clients, resource: Resource, before: dict[str, Any]) -> None: ...


class Ec2Instances:
    type = "ec2:instance"
    _LIVE = ("pending", "running", "stopping", "stopped")

    def discover(self, clients: Clients, region: str) -> list[Resource]:
        ec2 = clients.client("ec2", region)
        out: list[Resource] = []
        pages = ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": list(self._LIVE)}],
            PaginationConfig={"PageSize": 1000},
        )
        for page in pages:
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    tags = _tags(inst.get("Tags"))
                    out.append(
                        Resource(
                            provider="aws",
                            type=self.type,
                            id=inst["InstanceId"],
                            region=region,
                            account=reservation.get("OwnerId") or clients.account,
                            tags=tags,
                            name=tags.get("Name"),
                        )
                    )
        return out

    def capture(self, clients: Clients, resources: Sequence[Resource]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for region, group in _by_region(resources).items():
            ec2 = clients.client("ec2", region)
            for part in chunks([r.id for r in group], EC2_BATCH):
                for page in ec2.get_paginator("describe_instances").paginate(
                    InstanceIds=list(part)
                ):
                    for reservation in page.get("Reservations", []):
                        for inst in reservation.get("Instances", []):
                            found[inst["InstanceId"]] = {
                                "state": inst["State"]["Name"],
                                "tags": _tags(inst.get("Tags")),
                            }
        return [_found(found, r) for r in resources]

    def is_zero(self, state: dict[str, Any]) -> bool:
        return state.get("state") in ("stopping", "stopped")

    def zero(self, clients: Clients, resources: Sequence[Resource]) -> None:
        for region, group in _by_region(resources).items():
            for part in chunks([r.id for r in group], EC2_BATCH):
                clients.client("ec2", region).stop_instances(InstanceIds=list(part))

    def probe(self, clients: Clients, resources: Sequence[Resource]) -> None:
        """StopInstances with DryRun=True (raises DryRunOperation when permitted)."""
        for region, group in _by_region(resources).items():
            for part in chunks([r.id for r in group], EC2_BATCH):
                clients.client("ec2", region).stop_instances(InstanceIds=list(part), DryRun=True)

    def put_back(self, clients: Clients, resource: Resource, before: dict[str, Any]) -> None:
        if before.get("state") in ("pending", "running"):
            clients.client("ec2", resource.region).start_instances(InstanceIds=[resource.id])
        else:
            clients.client("ec2", resource.region).stop_instances(InstanceIds=[resource.id])


class AutoScalingGroups:
    type = "autoscaling:group"

    def discover(self, clients: Clients, region: str) -> list[Resource]:
        asg = clients.client("autoscaling", region)
        out: list[Resource] = []
        for page in asg.get_paginator("describe_auto_scaling_groups").paginate():
            for group in page.get("AutoScalingGroups", []):
                arn = group.get("AutoScalingGroupARN", "")
                out.append(
                    Resource(
                        provider="aws",
                        type=self.type,
                        id=group["AutoScalingGroupName"],
                        region=region,
                        account=_arn_account(arn) or clients.account,
                        tags=_tags(group.get("Tags")),
                        name=group["AutoScalingGroupName"],
                    )
                )
        return out

    def capture(self, clients: Clients, resources: Sequence[Resource]) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for region, group in _by_region(resources).items():
            asg = clients.client("autoscaling", region)
            for part in chunks([r.id for r in group], 50):
                answer = asg.describe_auto_scaling_groups(AutoScalingGroupNames=list(part))
                for g in answer.get("AutoScalingGroups", []):
                    found[g["AutoScalingGroupName"]] = {
                        "min": g["MinSize"],
                        "desired": g["DesiredCapacity"],
                        "max": g["MaxSize"],
                        "tags": _tags(g.get("Tags")),
                    }
        return [_found(found, r) for r in resources]

    def is_zero(self, state: dict[str, Any]) -> bool:
        return state.get("min") == 0 and state.get("desired") == 0 and state.get("max") == 0

    def zero(self, clients: Clients, resources: Sequence[Resource]) -> None:
        for r in resources:
            clients.client("autoscaling", r.region).update_auto_scaling_group(
                AutoScalingGroupName=r.id, MinSize=0, DesiredCapacity=0, MaxSize=0
            )

    def put_back(self, clients: Clients, resource: Resource, before: dict[str, Any]) -> None:
        clients.client("autoscaling", resource.region).update_auto_scaling_group(
            AutoScalingGroupName=resource.id,
            MinSize=int(before["min"]),
            DesiredCapacity=int(before["desired"]),
            MaxSize=int(before["max"]),
        )


class EcsServices:
    type = "ecs:service"

    def discover(self, clients: Clients, region: str) -> list[Resource]:
        ecs = clients.client("ecs", region)
        out: list[Resource] = []
        for page in ecs.get_paginator("list_clusters").paginate():
            for cluster in page.get("clusterArns", []):
                arns: list[str] = []
                for spage in ecs.get_paginator("list_services").paginate(cluster=cluster):
                    arns.extend(spage.get("serviceArns", []))
                for part in chunks(arns, 10):
                    answer = ecs.describe_services(
                        cluster=cluster, services=list(part), include=["TAGS"]
                    )
                    cluster_name = cluster.rsplit("/", 1)[-1]
                    for svc in answer.get("services", []):
                        out.append(
                            Resource(
                                provider="aws",
                                type=self.type,
                                id=svc["serviceArn"],
                                region=region,
                                account=_arn_account(svc["serviceArn"]) or clients.account,
                                tags=_tags(svc.get("tags"), "key", "value"),
                                name=f"{cluster_name}/{svc['serviceName']}",
                            )
                        )
        return out

    @staticmethod
    def _cluster_service(resource: Resource) -> tuple[str, str]:
        cluster, _, service = (resource.name or "").partition("/")
        return cluster, service

    def capture(self, clients: Clients, resources: Sequence[Resource]) -> list[dict[str, Any]]:
        out = []
        for r in resources:
            cluster, service = self._cluster_service(r)
            answer = clients.client("ecs", r.region).describe_services(
                cluster=cluster, services=[service], include=["TAGS"]
            )
            svc = answer["services"][0]
            out.append(
                {"desired": svc["desiredCount"], "tags": _tags(svc.get("tags"), "key", "value")}
            )
        return out

    def is_zero(self, state: dict[str, Any]) -> bool:
        return state.get("desired") == 0

    def zero(self, clients: Clients, resources: Sequence[Resource]) -> None:
        for r in resources:
            cluster, service = self._cluster_service(r)
            clients.client("ecs", r.region).update_service(
                cluster=cluster, service=service, desiredCount=0
            )

    def put_back(self, clients: Clients, resource: Resource, before: dict[str, Any]) -> None:
        cluster, service = self._cluster_service(resource)
        clients.client("ecs", resource.region).update_service(
            cluster=cluster, service=service, desiredCount=int(before["desired"])
        )


class LambdaFunctions:
    type = "lambda:function"

    def discover(self, clients: Clients, region: str) -> list[Resource]:
        lam = clients.client("lambda", region)
        out: list[Resource] = []
        for page in lam.get_paginator("list_functions").paginate():
            for fn in page.get("Functions", []):
                tags = lam.list_tags(Resource=fn["FunctionArn"]).get("Tags", {})
                out.append(
                    Resource(
                        provider="aws",
                        type=self.type,
                        id=fn["FunctionArn"],
                        region=region,
                        account=_arn_account(fn["FunctionArn"]) or clients.account,
                        tags=dict(tags),
                        name=fn["FunctionName"],
                    )
                )
        return out

    def capture(self, clients: Clients, resources: Sequence[Resource]) -> list[dict[str, Any]]:
        out = []
        for r in resources:
            lam = clients.client("lambda", r.region)
            answer = lam.get_function_concurrency(FunctionName=r.name or r.id)
            tags = lam.list_tags(Resource=r.id).get("Tags", {})
            out.append(
                {"reserved_concurrency": answer.get("ReservedConcurrentExecutions"), "tags": tags}
            )
        return out

    def is_zero(self, state: dict[str, Any]) -> bool:
        return state.get("reserved_concurrency") == 0

    def zero(self, clients: Clients, resources: Sequence[Resource]) -> None:
        for r in resources:
            clients.client("lambda", r.region).put_function_concurrency(
                FunctionName=r.name or r.id, ReservedConcurrentExecutions=0
            )

    def put_back(self, clients: Clients, resource: Resource, before: dict[str, Any]) -> None:
        lam = clients.client("lambda", resource.region)
        previous = before.get("reserved_concurrency")
        if previous is None:
            lam.delete_function_concurrency(FunctionName=resource.name or resource.id)
        else:
            lam.put_function_concurrency(
                FunctionName=resource.name or resource.id,
                ReservedConcurrentExecutions=int(previous),
            )


class RdsInstances:
    type = "rds:db"

    def discover(self, clients: Clients, region: str) -> list[Resource]:
        rds = clients.client("rds", region)
        out: list[Resource] = []
        for page in rds.get_paginator("describe_db_instances").paginate():
            for db in page.get("DBInstances", []):
                out.append(
                    Resource(
                        provider="aws",
                        type=self.type,
                        id=db["DBInstanceArn"],
                        region=region,
                        account=_arn_account(db["DBInstanceArn"]) or clients.account,
                        tags=_tags(db.get("TagList")),
                        name=db["DBInstanceIdentifier"],
                    )
                )
        return out

    def capture(self, clients: Clients, resources: Sequence[Resource]) -> list[dict[str, Any]]:
        out = []
        for r in resources:
            answer = clients.client("rds", r.region).describe_db_instances(
                DBInstanceIdentifier=r.name or r.id
            )
            db = answer["DBInstances"][0]
            out.append({"status": db["DBInstanceStatus"], "tags": _tags(db.get("TagList"))})
        return out

    def is_zero(self, state: dict[str, Any]) -> bool:
        return state.get("status") in ("stopped", "stopping")

    def zero(self, clients: Clients, resources: Sequence[Resource]) -> None:
        for r in resources:
            clients.client("rds", r.region).stop_db_instance(DBInstanceIdentifier=r.name or r.id)

    def put_back(self, clients: Clients, resource: Resource, before: dict[str, Any]) -> None:
        rds = clients.client("rds", resource.region)
        if before.get("status") in ("stopped", "stopping"):
            rds.stop_db_instance(DBInstanceIdentifier=resource.name or resource.id)
        else:
            rds.start_db_instance(DBInstanceIdentifier=resource.name or resource.id)


class EksNodegroups:
    """Managed node groups: min and desired to 0 (EKS requires max >= 1, so max is kept)."""

    type = "eks:nodegroup"

    def discover(self, clients: Clients, region: str) -> list[Resource]:
        eks = clients.client("eks", region)
        out: list[Resource] = []
        for page in eks.get_paginator("list_clusters").paginate():
            for cluster in page.get("clusters", []):
                for npage in eks.get_paginator("list_nodegroups").paginate(clusterName=cluster):
                    for name in npage.get("nodegroups", []):
                        ng = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)[
                            "nodegroup"
                        ]
                        out.append(
                            Resource(
                                provider="aws",
                                type=self.type,
                                id=ng["nodegroupArn"],
                                region=region,
                                account=_arn_account(ng["nodegroupArn"]) or clients.account,
                                tags=dict(ng.get("tags") or {}),
                                name=f"{cluster}/{name}",
                            )
                        )
        return out

    def _describe(self, clients: Clients, r: Resource) -> dict[str, Any]:
        cluster, _, name = (r.name or "").partition("/")
        ng: dict[str, Any] = clients.client("eks", r.region).describe_nodegroup(
            clusterName=cluster, nodegroupName=name
        )["nodegroup"]
        return ng

    def capture(self, clients: Clients, resources: Sequence[Resource]) -> list[dict[str, Any]]:
        out = []
        for r in resources:
            ng = self._describe(clients, r)
            scaling = ng.get("scalingConfig", {})
            out.append(
                {
                    "min": scaling.get("minSize"),
                    "desired": scaling.get("desiredSize"),
                    "max": scaling.get("maxSize"),
                    "tags": dict(ng.get("tags") or {}),
                }
            )
        return out

    def is_zero(self, state: dict[str, Any]) -> bool:
        return state.get("min") == 0 and state.get("desired") == 0

    def _scale(self, clients: Clients, r: Resource, lo: int, want: int, hi: int) -> None:
        cluster, _, name = (r.name or "").partition("/")
        clients.client("eks", r.region).update_nodegroup_config(
            clusterName=cluster,
            nodegroupName=name,
            scalingConfig={"minSize": lo, "desiredSize": want, "maxSize": hi},
        )

    def zero(self, clients: Clients, resources: Sequence[Resource]) -> None:
        for r in resources:
            hi = self._describe(clients, r).get("scalingConfig", {}).get("maxSize", 1)
            self._scale(clients, r, 0, 0, max(int(hi), 1))

    def put_back(self, clients: Clients, resource: Resource, before: dict[str, Any]) -> None:
        self._scale(
            clients, resource, int(before["min"]), int(before["desired"]), int(before["max"])
        )


def _by_region(resources: Sequence[Resource]) -> dict[str | None, list[Resource]]:
    out: dict[str | None, list[Resource]] = {}
    for r in resources:
        out.setdefault(r.region, []).append(r)
    return out


def _found(found: dict[str, dict[str, Any]], r: Resource) -> dict[str, Any]:
    if r.id not in found:
        from cloudcircuit.errors import EnforcementError

        raise EnforcementError(f"{r.type} {r.id} not found in {r.region}")
    return found[r.id]


HANDLERS: dict[str, Handler] = {
    h.type: h
    for h in (
        Ec2Instances(),
        AutoScalingGroups(),
        EcsServices(),
        LambdaFunctions(),
        RdsInstances(),
        EksNodegroups(),
    )
}
