"""A small tagged fleet in moto (EC2, ASG, ECS, Lambda, RDS, EKS) for the demo, tests and
benchmarks. Uses plain boto3 (not :mod:`.clients`): seeding is not the adapter's own traffic,
so it stays out of the recorded operations the IAM test checks."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PROTECT",
    "Fleet",
    "seed_fleet",
]

PROTECT = {"cloudcircuit:protect": "true"}
_AMI = "ami-12c6146b"


def _tagspec(kind: str, tags: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


@dataclass
class Fleet:
    """What :func:`seed_fleet` made (names and IDs by role)."""

    region: str
    instances: dict[str, str] = field(default_factory=dict)
    asgs: list[str] = field(default_factory=list)
    ecs_cluster: str = "apps"
    ecs_services: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    databases: list[str] = field(default_factory=list)
    eks_cluster: str = "training"
    nodegroups: list[str] = field(default_factory=list)


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


def seed_fleet(
    region: str = "us-east-1", *, extra_instances: int = 0, with_rds_eks: bool = True
) -> Fleet:
    """Create the demo fleet in the current moto mock (one account, one region).

    team=ml: two EC2 instances, an ASG (5 desired), an EKS node group, a Lambda with reserved
    concurrency 50; one ml instance carries the protect tag; team=web / data / platform
    resources keep the safety-rail populations realistic.
    """
    import boto3

    fleet = Fleet(region=region)
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{region}a")[
        "Subnet"
    ]["SubnetId"]
    plan = {
        "ml-gpu-1": {"team": "ml", "env": "research"},
        "ml-gpu-2": {"team": "ml", "env": "research"},
        "ml-keep": {"team": "ml", "env": "research", **PROTECT},
        "web-1": {"team": "web", "env": "prod"},
        "web-2": {"team": "web", "env": "prod"},
        "data-1": {"team": "data", "env": "prod"},
    }
    for name, tags in plan.items():
        inst = ec2.run_instances(
            ImageId=_AMI,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            SubnetId=subnet,
            TagSpecifications=_tagspec("instance", {"Name": name, **tags}),
        )["Instances"][0]
        fleet.instances[name] = inst["InstanceId"]
    for i in range(extra_instances):
        ec2.run_instances(
            ImageId=_AMI,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            SubnetId=subnet,
            TagSpecifications=_tagspec("instance", {"Name": f"bulk-{i}", "team": "bulk"}),
        )

    asg = boto3.client("autoscaling", region_name=region)
    ec2.create_launch_template(
        LaunchTemplateName="workers",
        LaunchTemplateData={"ImageId": _AMI, "InstanceType": "t3.micro"},
    )
    for name, team, size in (("ml-training", "ml", 5), ("data-etl", "data", 2)):
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": "workers", "Version": "$Latest"},
            MinSize=1,
            MaxSize=10,
            DesiredCapacity=size,
            VPCZoneIdentifier=subnet,
            Tags=[
                {
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                    "Key": "team",
                    "Value": team,
                    "PropagateAtLaunch": False,
                }
            ],
        )
        fleet.asgs.append(name)

    ecs = boto3.client("ecs", region_name=region)
    ecs.create_cluster(clusterName=fleet.ecs_cluster)
    ecs.register_task_definition(
        family="web",
        containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}],
    )
    for name, tags, count in (
        ("checkout", {"team": "platform", "env": "prod"}, 4),
        ("reports", {"team": "data", "env": "prod"}, 2),
        ("ml-inference", {"team": "ml", "env": "research"}, 3),
    ):
        ecs.create_service(
            cluster=fleet.ecs_cluster,
            serviceName=name,
            taskDefinition="web",
            desiredCount=count,
            tags=[{"key": k, "value": v} for k, v in tags.items()],
        )
        fleet.ecs_services.append(name)

    iam = boto3.client("iam", region_name=region)
    role = iam.create_role(
        RoleName="fn-role",
        AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}',
    )["Role"]["Arn"]
    lam = boto3.client("lambda", region_name=region)
    for name, tags, reserved in (
        ("ml-batch", {"team": "ml"}, 50),
        ("ml-notify", {"team": "ml"}, None),
        ("web-api", {"team": "web"}, None),
    ):
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": _zip()},
            Tags=tags,
        )
        if reserved is not None:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
        fleet.functions.append(name)

    if with_rds_eks:
        rds = boto3.client("rds", region_name=region)
        for name, team in (("ml-features", "ml"), ("orders", "platform")):
            rds.create_db_instance(
                DBInstanceIdentifier=name,
                DBInstanceClass="db.t3.micro",
                Engine="postgres",
                MasterUsername="admin",
                MasterUserPassword="not-a-real-password",
                AllocatedStorage=20,
                Tags=[{"Key": "team", "Value": team}],
            )
            fleet.databases.append(name)
        eks = boto3.client("eks", region_name=region)
        eks.create_cluster(
            name=fleet.eks_cluster,
            roleArn=role,
            resourcesVpcConfig={"subnetIds": [subnet]},
        )
        for name, team in (("gpu", "ml"), ("system", "platform")):
            eks.create_nodegroup(
                clusterName=fleet.eks_cluster,
                nodegroupName=name,
                nodeRole=role,
                subnets=[subnet],
                scalingConfig={"minSize": 2, "desiredSize": 3, "maxSize": 6},
                tags={"team": team},
            )
            fleet.nodegroups.append(name)
    return fleet
