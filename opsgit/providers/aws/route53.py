"""`aws_route53_zone` and `aws_route53_record`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opsgit.providers.aws.common import (
    AwsType,
    ordered_like,
    read_back,
)
from opsgit.providers.base import Field, ReadEach, ReadMany, Schema

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
        attributes = read_back(self, zone_id, config)
        return zone_id, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        self.clients.get("route53").update_hosted_zone_comment(Id=resource_id, Comment=str(config.get("comment", "")))
        attributes = read_back(self, resource_id, config)
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
                            "records": ordered_like(values, attributes.get("records"))})
        return results

    def _change(self, action: str, config: Mapping[str, Any]) -> None:
        self.clients.get("route53").change_resource_record_sets(HostedZoneId=config["zone_id"], ChangeBatch={
            "Changes": [{"Action": action, "ResourceRecordSet": {
                "Name": str(config["name"]), "Type": str(config["type"]), "TTL": int(config.get("ttl") or 300),
                "ResourceRecords": [{"Value": str(v)} for v in config["records"]]}}]})

    def create(self, config: Mapping[str, Any], token: str) -> tuple[str, dict[str, Any]]:
        self._change("UPSERT", config)  # an upsert is idempotent: a retried create changes nothing
        resource_id = f"{config['zone_id']}_{str(config['name']).rstrip('.')}_{config['type']}"
        attributes = read_back(self, resource_id, config)
        return resource_id, attributes

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        return self.create(config, "")[1]

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        current = self.read(resource_id, attributes)
        if current is not None:
            self._change("DELETE", current)


