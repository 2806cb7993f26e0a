"""`aws_launch_configuration`, `aws_launch_template` and `aws_autoscaling_group`: the blue/green
building blocks."""

from __future__ import annotations

import base64
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
            data["security_groups"] = ordered_like(list(item.get("SecurityGroups") or []),
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
        return read_batched(self.clients, "autoscaling", items, fetch, self._shape)

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        autoscaling = self.clients.get("autoscaling", region_of(config))
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
        attributes = read_back(self, name, config)
        return name, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        raise RuntimeError("launch configurations cannot be updated in place")  # every field forces replacement

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        autoscaling = self.clients.get("autoscaling", region_of(attributes))
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
        return read_batched(self.clients, "ec2", items, fetch, shape)

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
            shaped["vpc_security_group_ids"] = ordered_like(list(data.get("SecurityGroupIds") or []),
                                                             previous.get("vpc_security_group_ids"))
        if "key_name" in previous:
            shaped["key_name"] = data.get("KeyName")
        if "tags" in previous or template.get("Tags"):
            shaped["tags"] = tags_map(template.get("Tags"))
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
        ec2 = self.clients.get("ec2", region_of(config))
        name = str(config["name"])
        existing = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [name]}])[
            "LaunchTemplates"]
        if existing:
            template_id = existing[0]["LaunchTemplateId"]
            return template_id, self.update(template_id, {}, config)
        arguments: dict[str, Any] = {"LaunchTemplateName": name, "LaunchTemplateData": self._data(config)}
        if config.get("tags"):
            arguments["TagSpecifications"] = [{"ResourceType": "launch-template", "Tags": tags_list(config["tags"])}]
        template_id = ec2.create_launch_template(**arguments)["LaunchTemplate"]["LaunchTemplateId"]
        attributes = read_back(self, template_id, config)
        return template_id, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        ec2 = self.clients.get("ec2", region_of(config))
        current = self.read(resource_id, config)
        if current is None or any(current.get(k) != config.get(k) for k in
                                  ("image_id", "instance_type", "user_data", "vpc_security_group_ids", "key_name")
                                  if k in config):
            ec2.create_launch_template_version(LaunchTemplateId=resource_id, LaunchTemplateData=self._data(config))
        sync_tags(ec2, resource_id, (current or {}).get("tags") or {}, config.get("tags"))
        attributes = read_back(self, resource_id, config)
        return attributes

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        self.clients.get("ec2", region_of(attributes)).delete_launch_template(LaunchTemplateId=resource_id)


# -- autoscaling groups ----------------------------------------------------------------------------

class AutoscalingGroup(AwsType, ReadMany):
    schema = Schema({
        "name": Field(required=True, force_new=True), "launch_configuration": Field(),
        "min_size": Field(required=True), "max_size": Field(required=True), "desired_capacity": Field(),
        "availability_zones": Field(), "vpc_zone_identifier": Field(), "tag": Field(),
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
            "availability_zones": ordered_like(list(group.get("AvailabilityZones") or []),
                                                previous.get("availability_zones")),
            "tag": ordered_like(tags, previous.get("tag")), "id": group["AutoScalingGroupName"],
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
        return read_batched(self.clients, "autoscaling", items, fetch, self._shape)

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
        autoscaling = self.clients.get("autoscaling", region_of(config))
        name = str(config["name"])
        if autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]:
            return name, self.update(name, {}, config)  # adopt what a crashed apply created
        autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, Tags=self._tags(name, config.get("tag")),
                                              **self._sizes(config))
        attributes = read_back(self, name, config)
        return name, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        autoscaling = self.clients.get("autoscaling", region_of(config))
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=resource_id, **self._sizes(config))
        if "tag" in config:
            wanted = {t["key"] for t in config["tag"] or []}
            stale = [t for t in old.get("tag") or [] if t["key"] not in wanted]
            if stale:
                autoscaling.delete_tags(Tags=self._tags(resource_id, stale))
            if config["tag"]:
                autoscaling.create_or_update_tags(Tags=self._tags(resource_id, config["tag"]))
        attributes = read_back(self, resource_id, config)
        return attributes

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        autoscaling = self.clients.get("autoscaling", region_of(attributes))
        try:
            autoscaling.delete_auto_scaling_group(AutoScalingGroupName=resource_id, ForceDelete=True)
        except autoscaling.exceptions.ClientError as error:
            if "not found" not in str(error).lower():
                raise


