"""The aws provider, on boto3: credentials and endpoint from boto3's own chain (so
`AWS_ENDPOINT_URL` points it at a local endpoint), adaptive retries for throttling.

Refresh reads each type in batches (one Describe call with many ids or names, paginated), so its
cost grows with types and pages, not with resources. Creates are idempotent across a crash: an
object is found by its unique name, or for instances by an `opsgit:token` tag set atomically at
launch, and adopted instead of created twice.
"""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opsgit.providers.base import Field, ReadEach, ReadMany, Schema, aws_retries

TOKEN_TAG = "opsgit:token"
BATCH = 50


class Clients:
    """One boto3 client per (service, region), created lazily and shared by threads."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        with self._lock:
            if key not in self._clients:
                import boto3
                from botocore.config import Config

                self._clients[key] = boto3.session.Session().client(
                    service, region_name=key[1],
                    config=Config(retries=aws_retries(), connect_timeout=5,
                                  read_timeout=30))
            return self._clients[key]


class AwsType:
    """What every aws resource type shares: the provider's clients."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients


def _region(attributes: Mapping[str, Any]) -> str | None:
    region = attributes.get("region")
    return str(region) if region else None


def _tags_list(tags: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": str(k), "Value": str(v)} for k, v in sorted(tags.items())]


def _tags_map(tags: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or [] if t["Key"] != TOKEN_TAG and not t["Key"].startswith("aws:")}


def _by_region(items: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str | None, list[int]]:
    groups: dict[str | None, list[int]] = {}
    for position, (_, attributes) in enumerate(items):
        groups.setdefault(_region(attributes), []).append(position)
    return groups


def _read_batched(clients: Clients, service: str, items: Sequence[tuple[str, Mapping[str, Any]]],
                  fetch: Callable[[Any, list[str]], Mapping[str, Any]],
                  shape: Callable[[Any, Mapping[str, Any]], dict[str, Any]]) -> list[dict[str, Any] | None]:
    """Read many resources with one call per region and chunk: `fetch(client, ids)` returns what
    exists by id, `shape(found, previous attributes)` makes it config-shaped; missing ones are None."""
    results: list[dict[str, Any] | None] = [None] * len(items)
    for region, positions in _by_region(items).items():
        client = clients.get(service, region)
        for start in range(0, len(positions), BATCH):
            chunk = positions[start:start + BATCH]
            found = fetch(client, [items[p][0] for p in chunk])
            for position in chunk:
                item = found.get(items[position][0])
                results[position] = shape(item, items[position][1]) if item is not None else None
    return results


def _ordered_like(found: list[Any], previous: Sequence[Any] | None) -> list[Any]:
    """`found` in the order of `previous` where the items match, new ones after: AWS returns
    rules and lists in its own order, and order is not a change."""
    rest = list(found)
    ordered = []
    for item in previous or []:
        if item in rest:
            rest.remove(item)
            ordered.append(item)
    return ordered + sorted(rest, key=repr)


# -- security groups -------------------------------------------------------------------------------

def _rules(permissions: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rules = []
    for permission in permissions:
        protocol = str(permission.get("IpProtocol", "-1"))
        rules.append({"from_port": int(permission.get("FromPort", 0)) if protocol != "-1" else 0,
                      "to_port": int(permission.get("ToPort", 0)) if protocol != "-1" else 0,
                      "protocol": protocol,
                      "cidr_blocks": sorted(r["CidrIp"] for r in permission.get("IpRanges", []))})
    return rules


def _permission(rule: Mapping[str, Any]) -> dict[str, Any]:
    protocol = str(rule.get("protocol", "-1"))
    permission: dict[str, Any] = {"IpProtocol": protocol,
                                  "IpRanges": [{"CidrIp": c} for c in rule.get("cidr_blocks") or []]}
    if protocol != "-1":
        permission["FromPort"] = int(rule.get("from_port", 0))
        permission["ToPort"] = int(rule.get("to_port", 0))
    return permission


def _normal(rules: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    normal = []
    for rule in rules or []:
        protocol = str(rule.get("protocol", "-1"))
        normal.append({"from_port": 0 if protocol == "-1" else int(rule.get("from_port", 0)),
                       "to_port": 0 if protocol == "-1" else int(rule.get("to_port", 0)),
                       "protocol": protocol, "cidr_blocks": sorted(rule.get("cidr_blocks") or [])})
    return normal


class SecurityGroup(AwsType, ReadMany):
    schema = Schema({
        "name": Field(required=True, force_new=True), "description": Field(force_new=True),
        "region": Field(force_new=True), "vpc_id": Field(force_new=True), "ingress": Field(), "egress": Field(),
        "tags": Field(), "id": Field(computed=True), "owner_id": Field(computed=True),
    })

    def _shape(self, group: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": group["GroupName"], "description": group.get("Description", ""),
            "ingress": _ordered_like(_rules(group.get("IpPermissions", [])), _normal(previous.get("ingress"))),
            "egress": _ordered_like(_rules(group.get("IpPermissionsEgress", [])), _normal(previous.get("egress"))),
            "tags": _tags_map(group.get("Tags")), "id": group["GroupId"], "owner_id": group.get("OwnerId", ""),
        }
        for key in ("region", "vpc_id"):
            if key in previous:
                data[key] = previous[key] if key == "region" else group.get("VpcId")
        if "tags" not in previous and not data["tags"]:
            del data["tags"]
        return data

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        def fetch(ec2: Any, ids: list[str]) -> dict[str, Any]:
            pages = ec2.get_paginator("describe_security_groups").paginate(Filters=[{"Name": "group-id",
                                                                                     "Values": ids}])
            return {g["GroupId"]: g for page in pages for g in page["SecurityGroups"]}
        return _read_batched(self.clients, "ec2", items, fetch, self._shape)

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        ec2 = self.clients.get("ec2", _region(config))
        filters = [{"Name": "group-name", "Values": [str(config["name"])]}]
        if config.get("vpc_id"):
            filters.append({"Name": "vpc-id", "Values": [str(config["vpc_id"])]})
        existing = ec2.describe_security_groups(Filters=filters)["SecurityGroups"]
        if existing:
            group_id = existing[0]["GroupId"]  # created before a crash, never recorded: adopt it
        else:
            arguments: dict[str, Any] = {"GroupName": str(config["name"]),
                                         "Description": str(config.get("description") or "Managed by opsgit")}
            if config.get("vpc_id"):
                arguments["VpcId"] = config["vpc_id"]
            if config.get("tags"):
                arguments["TagSpecifications"] = [{"ResourceType": "security-group",
                                                   "Tags": _tags_list(config["tags"])}]
            group_id = ec2.create_security_group(**arguments)["GroupId"]
        attributes = self.read(group_id, config)
        assert attributes is not None
        return group_id, self.update(group_id, attributes, config)

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        ec2 = self.clients.get("ec2", _region(config))
        current = self.read(resource_id, {**config, **{k: old[k] for k in ("ingress", "egress") if k in old}})
        assert current is not None
        for key, authorize, revoke in (("ingress", ec2.authorize_security_group_ingress,
                                        ec2.revoke_security_group_ingress),
                                       ("egress", ec2.authorize_security_group_egress,
                                        ec2.revoke_security_group_egress)):
            if key not in config:
                continue
            wanted, have = _normal(config[key]), current.get(key, [])
            removed = [r for r in have if r not in wanted]
            added = [r for r in wanted if r not in have]
            if removed:
                revoke(GroupId=resource_id, IpPermissions=[_permission(r) for r in removed])
            if added:
                authorize(GroupId=resource_id, IpPermissions=[_permission(r) for r in added])
        _sync_tags(ec2, resource_id, current.get("tags", {}), config.get("tags"))
        refreshed = self.read(resource_id, config)
        assert refreshed is not None
        return refreshed

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        ec2 = self.clients.get("ec2", _region(attributes))
        try:
            ec2.delete_security_group(GroupId=resource_id)
        except ec2.exceptions.ClientError as error:
            if "NotFound" not in str(error):
                raise


def _sync_tags(ec2: Any, resource_id: str, have: Mapping[str, str], wanted: Mapping[str, Any] | None) -> None:
    if wanted is None:
        return
    stale = [k for k in have if k not in wanted]
    changed = {k: v for k, v in wanted.items() if have.get(k) != str(v)}
    if stale:
        ec2.delete_tags(Resources=[resource_id], Tags=[{"Key": k} for k in stale])
    if changed:
        ec2.create_tags(Resources=[resource_id], Tags=_tags_list(changed))


# -- launch configurations -----------------------------------------------------------------------

class LaunchConfiguration(AwsType, ReadMany):
    """Immutable in AWS: every change replaces it (use create_before_destroy with name_prefix)."""

    schema = Schema({
        "name": Field(force_new=True, computed=True), "name_prefix": Field(force_new=True),
        "image_id": Field(required=True, force_new=True), "instance_type": Field(required=True, force_new=True),
        "security_groups": Field(force_new=True), "user_data": Field(force_new=True),
        "key_name": Field(force_new=True), "iam_instance_profile": Field(force_new=True),
        "region": Field(force_new=True), "id": Field(computed=True), "arn": Field(computed=True),
    })

    def _shape(self, item: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {"name": item["LaunchConfigurationName"], "image_id": item["ImageId"],
                                "instance_type": item["InstanceType"], "id": item["LaunchConfigurationName"],
                                "arn": item.get("LaunchConfigurationARN", "")}
        if "security_groups" in previous or item.get("SecurityGroups"):
            data["security_groups"] = _ordered_like(list(item.get("SecurityGroups") or []),
                                                    previous.get("security_groups"))
        if "user_data" in previous or item.get("UserData"):
            data["user_data"] = base64.b64decode(item.get("UserData") or "").decode("utf-8", "replace")
        for key, source in (("key_name", "KeyName"), ("iam_instance_profile", "IamInstanceProfile")):
            if key in previous or item.get(source):
                data[key] = item.get(source)
        for key in ("region", "name_prefix"):
            if key in previous:
                data[key] = previous[key]
        return data

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        def fetch(autoscaling: Any, names: list[str]) -> dict[str, Any]:
            pages = autoscaling.get_paginator("describe_launch_configurations").paginate(
                LaunchConfigurationNames=names)
            return {c["LaunchConfigurationName"]: c for page in pages for c in page["LaunchConfigurations"]}
        return _read_batched(self.clients, "autoscaling", items, fetch, self._shape)

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        autoscaling = self.clients.get("autoscaling", _region(config))
        # A prefix gets a suffix derived from the apply's token, so a retried create finds its object.
        name = str(config.get("name") or f"{config.get('name_prefix', 'opsgit-')}{token[:20]}")
        if not autoscaling.describe_launch_configurations(LaunchConfigurationNames=[name])["LaunchConfigurations"]:
            arguments: dict[str, Any] = {"LaunchConfigurationName": name, "ImageId": config["image_id"],
                                         "InstanceType": config["instance_type"]}
            if config.get("security_groups"):
                arguments["SecurityGroups"] = list(config["security_groups"])
            if config.get("user_data"):
                arguments["UserData"] = str(config["user_data"])
            for key, target in (("key_name", "KeyName"), ("iam_instance_profile", "IamInstanceProfile")):
                if config.get(key):
                    arguments[target] = config[key]
            autoscaling.create_launch_configuration(**arguments)
        attributes = self.read(name, config)
        assert attributes is not None
        return name, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        raise RuntimeError("launch configurations cannot be updated in place")  # every field forces replacement

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        autoscaling = self.clients.get("autoscaling", _region(attributes))
        try:
            autoscaling.delete_launch_configuration(LaunchConfigurationName=resource_id)
        except autoscaling.exceptions.ClientError as error:
            if "not found" not in str(error).lower() and "NotFound" not in str(error):
                raise


# -- launch templates -------------------------------------------------------------------------------

class LaunchTemplate(AwsType, ReadMany):
    """Versioned: a change creates a new version, which `$Latest` users pick up."""

    schema = Schema({
        "name": Field(required=True, force_new=True), "image_id": Field(required=True),
        "instance_type": Field(required=True), "user_data": Field(), "vpc_security_group_ids": Field(),
        "key_name": Field(), "tags": Field(), "region": Field(force_new=True), "id": Field(computed=True),
        "latest_version": Field(computed=True),
    })

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        def fetch(ec2: Any, ids: list[str]) -> dict[str, Any]:
            templates = self._describe(ec2, ids)
            return {i: (t, ec2.describe_launch_template_versions(LaunchTemplateId=i, Versions=["$Latest"])[
                "LaunchTemplateVersions"][0]) for i, t in templates.items()}
        def shape(found: tuple[Any, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
            return self._shape(found[0], found[1], previous)
        return _read_batched(self.clients, "ec2", items, fetch, shape)

    def _describe(self, ec2: Any, ids: list[str]) -> dict[str, Any]:
        """One call for many ids; the API refuses the whole call when one is missing, so then
        it is asked again id by id."""
        try:
            templates = ec2.describe_launch_templates(LaunchTemplateIds=ids)["LaunchTemplates"]
            return {t["LaunchTemplateId"]: t for t in templates}
        except ec2.exceptions.ClientError as error:
            if "NotFound" not in str(error) or len(ids) == 1:
                if "NotFound" in str(error):
                    return {}
                raise
        found: dict[str, Any] = {}
        for template_id in ids:
            found.update(self._describe(ec2, [template_id]))
        return found

    def _shape(self, template: Mapping[str, Any], version: Mapping[str, Any], previous: Mapping[str, Any]
               ) -> dict[str, Any]:
        data = version["LaunchTemplateData"]
        shaped: dict[str, Any] = {"name": template["LaunchTemplateName"], "image_id": data.get("ImageId"),
                                  "instance_type": data.get("InstanceType"), "id": template["LaunchTemplateId"],
                                  "latest_version": version["VersionNumber"]}
        if "user_data" in previous or data.get("UserData"):
            shaped["user_data"] = base64.b64decode(data.get("UserData") or "").decode("utf-8", "replace")
        if "vpc_security_group_ids" in previous or data.get("SecurityGroupIds"):
            shaped["vpc_security_group_ids"] = _ordered_like(list(data.get("SecurityGroupIds") or []),
                                                             previous.get("vpc_security_group_ids"))
        if "key_name" in previous:
            shaped["key_name"] = data.get("KeyName")
        if "tags" in previous or template.get("Tags"):
            shaped["tags"] = _tags_map(template.get("Tags"))
        if "region" in previous:
            shaped["region"] = previous["region"]
        return shaped

    def _data(self, config: Mapping[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {"ImageId": config["image_id"], "InstanceType": config["instance_type"]}
        if config.get("user_data"):
            data["UserData"] = base64.b64encode(str(config["user_data"]).encode()).decode()
        if config.get("vpc_security_group_ids"):
            data["SecurityGroupIds"] = list(config["vpc_security_group_ids"])
        if config.get("key_name"):
            data["KeyName"] = config["key_name"]
        return data

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        ec2 = self.clients.get("ec2", _region(config))
        name = str(config["name"])
        existing = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [name]}])[
            "LaunchTemplates"]
        if existing:
            template_id = existing[0]["LaunchTemplateId"]
            return template_id, self.update(template_id, {}, config)
        arguments: dict[str, Any] = {"LaunchTemplateName": name, "LaunchTemplateData": self._data(config)}
        if config.get("tags"):
            arguments["TagSpecifications"] = [{"ResourceType": "launch-template", "Tags": _tags_list(config["tags"])}]
        template_id = ec2.create_launch_template(**arguments)["LaunchTemplate"]["LaunchTemplateId"]
        attributes = self.read(template_id, config)
        assert attributes is not None
        return template_id, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        ec2 = self.clients.get("ec2", _region(config))
        current = self.read(resource_id, config)
        if current is None or any(current.get(k) != config.get(k) for k in
                                  ("image_id", "instance_type", "user_data", "vpc_security_group_ids", "key_name")
                                  if k in config):
            ec2.create_launch_template_version(LaunchTemplateId=resource_id, LaunchTemplateData=self._data(config))
        _sync_tags(ec2, resource_id, (current or {}).get("tags") or {}, config.get("tags"))
        attributes = self.read(resource_id, config)
        assert attributes is not None
        return attributes

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        self.clients.get("ec2", _region(attributes)).delete_launch_template(LaunchTemplateId=resource_id)


# -- autoscaling groups ----------------------------------------------------------------------------

class AutoscalingGroup(AwsType, ReadMany):
    schema = Schema({
        "name": Field(required=True, force_new=True), "launch_configuration": Field(),
        "min_size": Field(required=True), "max_size": Field(required=True), "desired_capacity": Field(),
        "availability_zones": Field(), "vpc_zone_identifier": Field(), "tags": Field(),
        "health_check_type": Field(), "region": Field(force_new=True), "id": Field(computed=True),
        "arn": Field(computed=True),
    })

    def _shape(self, group: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
        tags = [{"key": t["Key"], "value": t["Value"], "propagate_at_launch": bool(t.get("PropagateAtLaunch"))}
                for t in group.get("Tags", [])]
        data: dict[str, Any] = {
            "name": group["AutoScalingGroupName"], "launch_configuration": group.get("LaunchConfigurationName"),
            "min_size": group["MinSize"], "max_size": group["MaxSize"],
            "desired_capacity": group["DesiredCapacity"],
            "availability_zones": _ordered_like(list(group.get("AvailabilityZones") or []),
                                                previous.get("availability_zones")),
            "tags": _ordered_like(tags, previous.get("tags")), "id": group["AutoScalingGroupName"],
            "arn": group.get("AutoScalingGroupARN", ""),
        }
        for key, source in (("vpc_zone_identifier", "VPCZoneIdentifier"), ("health_check_type", "HealthCheckType")):
            if key in previous:
                data[key] = group.get(source)
        if "region" in previous:
            data["region"] = previous["region"]
        return data

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        def fetch(autoscaling: Any, names: list[str]) -> dict[str, Any]:
            pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=names)
            return {g["AutoScalingGroupName"]: g for page in pages for g in page["AutoScalingGroups"]}
        return _read_batched(self.clients, "autoscaling", items, fetch, self._shape)

    def _sizes(self, config: Mapping[str, Any]) -> dict[str, Any]:
        arguments: dict[str, Any] = {"MinSize": int(config["min_size"]), "MaxSize": int(config["max_size"])}
        if config.get("desired_capacity") is not None:
            arguments["DesiredCapacity"] = int(config["desired_capacity"])
        if config.get("launch_configuration"):
            arguments["LaunchConfigurationName"] = config["launch_configuration"]
        if config.get("availability_zones"):
            arguments["AvailabilityZones"] = list(config["availability_zones"])
        if config.get("vpc_zone_identifier"):
            arguments["VPCZoneIdentifier"] = config["vpc_zone_identifier"]
        if config.get("health_check_type"):
            arguments["HealthCheckType"] = config["health_check_type"]
        return arguments

    def _tags(self, name: str, tags: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
        return [{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": t["key"], "Value": str(t["value"]),
                 "PropagateAtLaunch": bool(t.get("propagate_at_launch", False))} for t in tags or []]

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        autoscaling = self.clients.get("autoscaling", _region(config))
        name = str(config["name"])
        if autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]:
            return name, self.update(name, {}, config)  # adopt what a crashed apply created
        autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, Tags=self._tags(name, config.get("tags")),
                                              **self._sizes(config))
        attributes = self.read(name, config)
        assert attributes is not None
        return name, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        autoscaling = self.clients.get("autoscaling", _region(config))
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=resource_id, **self._sizes(config))
        if "tags" in config:
            wanted = {t["key"] for t in config["tags"] or []}
            stale = [t for t in old.get("tags") or [] if t["key"] not in wanted]
            if stale:
                autoscaling.delete_tags(Tags=self._tags(resource_id, stale))
            if config["tags"]:
                autoscaling.create_or_update_tags(Tags=self._tags(resource_id, config["tags"]))
        attributes = self.read(resource_id, config)
        assert attributes is not None
        return attributes

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        autoscaling = self.clients.get("autoscaling", _region(attributes))
        try:
            autoscaling.delete_auto_scaling_group(AutoScalingGroupName=resource_id, ForceDelete=True)
        except autoscaling.exceptions.ClientError as error:
            if "not found" not in str(error).lower():
                raise


# -- instances ----------------------------------------------------------------------------------

class Instance(AwsType, ReadMany):
    schema = Schema({
        "ami": Field(required=True, force_new=True), "instance_type": Field(required=True, force_new=True),
        "vpc_security_group_ids": Field(), "subnet_id": Field(force_new=True), "user_data": Field(force_new=True),
        "key_name": Field(force_new=True), "tags": Field(), "region": Field(force_new=True),
        "id": Field(computed=True), "private_ip": Field(computed=True), "public_ip": Field(computed=True),
        "availability_zone": Field(computed=True),
    })

    def _shape(self, instance: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ami": instance["ImageId"], "instance_type": instance["InstanceType"], "id": instance["InstanceId"],
            "private_ip": instance.get("PrivateIpAddress", ""), "public_ip": instance.get("PublicIpAddress", ""),
            "availability_zone": instance.get("Placement", {}).get("AvailabilityZone", ""),
        }
        groups = [g["GroupId"] for g in instance.get("SecurityGroups", [])]
        if "vpc_security_group_ids" in previous or groups:
            data["vpc_security_group_ids"] = _ordered_like(groups, previous.get("vpc_security_group_ids"))
        tags = _tags_map(instance.get("Tags"))
        if "tags" in previous or tags:
            data["tags"] = tags
        for key in ("user_data", "region", "key_name", "subnet_id"):
            if key in previous:
                data[key] = previous[key]  # not returned by DescribeInstances; set only at launch
        return data

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        def fetch(ec2: Any, ids: list[str]) -> dict[str, Any]:
            pages = ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "instance-id", "Values": ids}])
            return {i["InstanceId"]: i for page in pages for reservation in page["Reservations"]
                    for i in reservation["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")}
        return _read_batched(self.clients, "ec2", items, fetch, self._shape)

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        ec2 = self.clients.get("ec2", _region(config))
        existing = [i for r in ec2.describe_instances(Filters=[{"Name": f"tag:{TOKEN_TAG}", "Values": [token]}])[
            "Reservations"] for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]
        if existing:
            instance_id = existing[0]["InstanceId"]
        else:
            tags = {**(config.get("tags") or {}), TOKEN_TAG: token}
            arguments: dict[str, Any] = {
                "ImageId": config["ami"], "InstanceType": config["instance_type"], "MinCount": 1, "MaxCount": 1,
                "TagSpecifications": [{"ResourceType": "instance", "Tags": _tags_list(tags)}]}
            if config.get("vpc_security_group_ids"):
                arguments["SecurityGroupIds"] = list(config["vpc_security_group_ids"])
            for key, target in (("subnet_id", "SubnetId"), ("user_data", "UserData"), ("key_name", "KeyName")):
                if config.get(key):
                    arguments[target] = config[key]
            instance_id = ec2.run_instances(**arguments)["Instances"][0]["InstanceId"]
        attributes = self.read(instance_id, config)
        if attributes is None:  # eventual consistency: a fresh instance may not be listed yet
            import time
            for delay in (0.2, 0.5, 1, 2, 4):
                time.sleep(delay)
                attributes = self.read(instance_id, config)
                if attributes is not None:
                    break
        if attributes is None:
            raise RuntimeError(f"instance {instance_id} was launched but cannot be read back")
        return instance_id, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        ec2 = self.clients.get("ec2", _region(config))
        if "vpc_security_group_ids" in config and sorted(config["vpc_security_group_ids"] or []) != sorted(
                old.get("vpc_security_group_ids") or []):
            ec2.modify_instance_attribute(InstanceId=resource_id, Groups=list(config["vpc_security_group_ids"]))
        _sync_tags(ec2, resource_id, old.get("tags") or {}, config.get("tags"))
        attributes = self.read(resource_id, config)
        assert attributes is not None
        return attributes

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        self.clients.get("ec2", _region(attributes)).terminate_instances(InstanceIds=[resource_id])


# -- S3 buckets -----------------------------------------------------------------------------------

class Bucket(AwsType, ReadEach):  # S3 has no call that reads many buckets at once
    schema = Schema({
        "bucket": Field(required=True, force_new=True), "region": Field(force_new=True), "versioning": Field(),
        "tags": Field(), "force_destroy": Field(), "id": Field(computed=True), "arn": Field(computed=True),
    })

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        s3 = self.clients.get("s3", _region(attributes))
        try:
            s3.head_bucket(Bucket=resource_id)
        except s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                return None
            raise
        data: dict[str, Any] = {"bucket": resource_id, "id": resource_id, "arn": f"arn:aws:s3:::{resource_id}"}
        if "versioning" in attributes:
            status = s3.get_bucket_versioning(Bucket=resource_id).get("Status")
            data["versioning"] = status == "Enabled"
        try:
            tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=resource_id)["TagSet"]}
        except s3.exceptions.ClientError:
            tags = {}
        if "tags" in attributes or tags:
            data["tags"] = tags
        for key in ("region", "force_destroy"):
            if key in attributes:
                data[key] = attributes[key]
        return data

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        s3 = self.clients.get("s3", _region(config))
        name = str(config["bucket"])
        arguments: dict[str, Any] = {"Bucket": name}
        region = _region(config) or self.clients.region
        if region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):  # created before a crash: adopt it
            s3.create_bucket(**arguments)
        return name, self.update(name, {}, config)

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        s3 = self.clients.get("s3", _region(config))
        if "versioning" in config:
            s3.put_bucket_versioning(Bucket=resource_id, VersioningConfiguration={
                "Status": "Enabled" if config["versioning"] else "Suspended"})
        if config.get("tags"):
            s3.put_bucket_tagging(Bucket=resource_id, Tagging={"TagSet": _tags_list(config["tags"])})
        elif "tags" in config and old.get("tags"):
            s3.delete_bucket_tagging(Bucket=resource_id)
        attributes = self.read(resource_id, config)
        assert attributes is not None
        return attributes

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        s3 = self.clients.get("s3", _region(attributes))
        if attributes.get("force_destroy"):
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=resource_id):
                doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                          for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if doomed:
                    s3.delete_objects(Bucket=resource_id, Delete={"Objects": doomed})
        s3.delete_bucket(Bucket=resource_id)


# -- Route 53 --------------------------------------------------------------------------------------

def _undot(name: str, like: str | None) -> str:
    return name if (like or "").endswith(".") else name.rstrip(".")


class HostedZone(AwsType, ReadEach):
    schema = Schema({
        "name": Field(required=True, force_new=True), "comment": Field(), "id": Field(computed=True),
        "zone_id": Field(computed=True), "name_servers": Field(computed=True),
    })

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        route53 = self.clients.get("route53")
        try:
            answer = route53.get_hosted_zone(Id=resource_id)
        except route53.exceptions.NoSuchHostedZone:
            return None
        zone = answer["HostedZone"]
        data: dict[str, Any] = {"name": _undot(zone["Name"], attributes.get("name")), "id": resource_id,
                                "zone_id": resource_id,
                                "name_servers": list(answer.get("DelegationSet", {}).get("NameServers", []))}
        if "comment" in attributes:
            data["comment"] = zone.get("Config", {}).get("Comment", "")
        return data

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        route53 = self.clients.get("route53")
        name = str(config["name"]).rstrip(".") + "."
        found = [z for z in route53.list_hosted_zones_by_name(DNSName=name)["HostedZones"] if z["Name"] == name
                 and z.get("CallerReference") == token]
        if found:
            zone_id = found[0]["Id"].rsplit("/", 1)[-1]
        else:
            zone_id = route53.create_hosted_zone(Name=name, CallerReference=token, HostedZoneConfig={
                "Comment": str(config.get("comment") or "Managed by opsgit")})["HostedZone"]["Id"].rsplit("/", 1)[-1]
        attributes = self.read(zone_id, config)
        assert attributes is not None
        return zone_id, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        self.clients.get("route53").update_hosted_zone_comment(Id=resource_id, Comment=str(config.get("comment", "")))
        attributes = self.read(resource_id, config)
        assert attributes is not None
        return attributes

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        self.clients.get("route53").delete_hosted_zone(Id=resource_id)


class RecordSet(AwsType, ReadMany):
    schema = Schema({
        "zone_id": Field(required=True, force_new=True), "name": Field(required=True, force_new=True),
        "type": Field(required=True, force_new=True), "ttl": Field(), "records": Field(required=True),
        "id": Field(computed=True),
    })

    def read_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any] | None]:
        """One paginated listing per zone, whatever the number of records."""
        route53 = self.clients.get("route53")
        zones: dict[str, dict[tuple[str, str], Any]] = {}
        results: list[dict[str, Any] | None] = []
        for resource_id, attributes in items:
            zone_id, name, kind = resource_id.split("_", 2)
            if zone_id not in zones:
                zones[zone_id] = {}
                try:
                    for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
                        for record in page["ResourceRecordSets"]:
                            zones[zone_id][(record["Name"].rstrip("."), record["Type"])] = record
                except route53.exceptions.NoSuchHostedZone:
                    pass
            record = zones[zone_id].get((name.rstrip("."), kind))
            if record is None:
                results.append(None)
                continue
            values = [r["Value"] for r in record.get("ResourceRecords", [])]
            results.append({"zone_id": zone_id, "name": _undot(record["Name"], attributes.get("name")), "type": kind,
                            "ttl": record.get("TTL"), "id": resource_id,
                            "records": _ordered_like(values, attributes.get("records"))})
        return results

    def _change(self, action: str, config: Mapping[str, Any]) -> None:
        self.clients.get("route53").change_resource_record_sets(HostedZoneId=config["zone_id"], ChangeBatch={
            "Changes": [{"Action": action, "ResourceRecordSet": {
                "Name": str(config["name"]), "Type": str(config["type"]), "TTL": int(config.get("ttl") or 300),
                "ResourceRecords": [{"Value": str(v)} for v in config["records"]]}}]})

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        self._change("UPSERT", config)  # an upsert is idempotent: a retried create changes nothing
        resource_id = f"{config['zone_id']}_{str(config['name']).rstrip('.')}_{config['type']}"
        attributes = self.read(resource_id, config)
        assert attributes is not None
        return resource_id, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        return self.create(config, "")[1]

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        current = self.read(resource_id, attributes)
        if current is not None:
            self._change("DELETE", current)


class AwsProvider:
    name = "aws"

    def __init__(self, config: Mapping[str, Any]) -> None:
        clients = Clients(str(config.get("region") or "us-east-1"))
        self.resource_types = {
            "aws_security_group": SecurityGroup(clients),
            "aws_launch_configuration": LaunchConfiguration(clients),
            "aws_launch_template": LaunchTemplate(clients),
            "aws_autoscaling_group": AutoscalingGroup(clients),
            "aws_instance": Instance(clients),
            "aws_s3_bucket": Bucket(clients),
            "aws_route53_zone": HostedZone(clients),
            "aws_route53_record": RecordSet(clients),
        }


def make(config: Mapping[str, Any]) -> AwsProvider:
    return AwsProvider(config)
