"""`aws_security_group`: ingress and egress rules kept in the provider's shape, synchronised by
revoking and authorising the difference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opsgit.providers.aws.common import (
    AwsType,
    ordered_like,
    read_back,
    read_batched,
    region_of,
    sync_tags,
    tags_list,
    tags_map,
)
from opsgit.providers.base import Field, ReadMany, Schema

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
            "ingress": ordered_like(_rules(group.get("IpPermissions", [])), _normal(previous.get("ingress"))),
            "egress": ordered_like(_rules(group.get("IpPermissionsEgress", [])), _normal(previous.get("egress"))),
            "tags": tags_map(group.get("Tags")), "id": group["GroupId"], "owner_id": group.get("OwnerId", ""),
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
        return read_batched(self.clients, "ec2", items, fetch, self._shape)

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        ec2 = self.clients.get("ec2", region_of(config))
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
                                                   "Tags": tags_list(config["tags"])}]
            group_id = ec2.create_security_group(**arguments)["GroupId"]
        attributes = read_back(self, group_id, config)
        return group_id, self.update(group_id, attributes, config)

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        ec2 = self.clients.get("ec2", region_of(config))
        current = read_back(self, resource_id, {**config, **{k: old[k] for k in ("ingress", "egress") if k in old}})
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
        sync_tags(ec2, resource_id, current.get("tags", {}), config.get("tags"))
        refreshed = read_back(self, resource_id, config)
        return refreshed

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        ec2 = self.clients.get("ec2", region_of(attributes))
        try:
            ec2.delete_security_group(GroupId=resource_id)
        except ec2.exceptions.ClientError as error:
            if "NotFound" not in str(error):
                raise


