"""`aws_instance`: launched with an `opsgit:token` tag, so a crash between launch and journal
finds it again instead of launching twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opsgit.providers.aws.common import (
    TOKEN_TAG,
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
            data["vpc_security_group_ids"] = ordered_like(groups, previous.get("vpc_security_group_ids"))
        tags = tags_map(instance.get("Tags"))
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
        return read_batched(self.clients, "ec2", items, fetch, self._shape)

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        ec2 = self.clients.get("ec2", region_of(config))
        existing = [i for r in ec2.describe_instances(Filters=[{"Name": f"tag:{TOKEN_TAG}", "Values": [token]}])[
            "Reservations"] for i in r["Instances"] if i["State"]["Name"] not in ("terminated", "shutting-down")]
        if existing:
            instance_id = existing[0]["InstanceId"]
        else:
            tags = {**(config.get("tags") or {}), TOKEN_TAG: token}
            arguments: dict[str, Any] = {
                "ImageId": config["ami"], "InstanceType": config["instance_type"], "MinCount": 1, "MaxCount": 1,
                "TagSpecifications": [{"ResourceType": "instance", "Tags": tags_list(tags)}]}
            if config.get("vpc_security_group_ids"):
                arguments["SecurityGroupIds"] = list(config["vpc_security_group_ids"])
            for key, target in (("subnet_id", "SubnetId"), ("user_data", "UserData"), ("key_name", "KeyName")):
                if config.get(key):
                    arguments[target] = config[key]
            instance_id = ec2.run_instances(**arguments)["Instances"][0]["InstanceId"]
        return instance_id, read_back(self, instance_id, config)

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        ec2 = self.clients.get("ec2", region_of(config))
        if "vpc_security_group_ids" in config and sorted(config["vpc_security_group_ids"] or []) != sorted(
                old.get("vpc_security_group_ids") or []):
            ec2.modify_instance_attribute(InstanceId=resource_id, Groups=list(config["vpc_security_group_ids"]))
        sync_tags(ec2, resource_id, old.get("tags") or {}, config.get("tags"))
        attributes = read_back(self, resource_id, config)
        return attributes

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        self.clients.get("ec2", region_of(attributes)).terminate_instances(InstanceIds=[resource_id])


