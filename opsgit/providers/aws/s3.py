"""`aws_s3_bucket`."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from opsgit.providers.aws.common import (
    AwsType,
    read_back,
    region_of,
    tags_list,
)
from opsgit.providers.base import Field, ReadEach, Schema

# -- S3 buckets -----------------------------------------------------------------------------------

class Bucket(AwsType, ReadEach):  # S3 has no call that reads many buckets at once
    schema = Schema({
        "bucket": Field(required=True, force_new=True), "region": Field(force_new=True), "versioning": Field(),
        "tags": Field(), "force_destroy": Field(), "id": Field(computed=True), "arn": Field(computed=True),
    })

    def read(self, resource_id: str, attributes: Mapping[str, Any]) -> dict[str, Any] | None:
        s3 = self.clients.get("s3", region_of(attributes))
        try:
            s3.head_bucket(Bucket=resource_id)
        except s3.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                return None
            raise
        data: dict[str, Any] = {"bucket": resource_id, "id": resource_id, "arn": f"arn:aws:s3:::{resource_id}"}
        if "versioning" in attributes:  # the provider's block: versioning { enabled }
            status = s3.get_bucket_versioning(Bucket=resource_id).get("Status")
            data["versioning"] = [{"enabled": status == "Enabled"}]
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
        s3 = self.clients.get("s3", region_of(config))
        name = str(config["bucket"])
        arguments: dict[str, Any] = {"Bucket": name}
        region = region_of(config) or self.clients.region
        if region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):  # created before a crash: adopt it
            s3.create_bucket(**arguments)
        return name, self.update(name, {}, config)

    def update(self, resource_id: str, old: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        s3 = self.clients.get("s3", region_of(config))
        if "versioning" in config:
            blocks = config["versioning"] or []
            enabled = bool(blocks[0].get("enabled")) if blocks and isinstance(blocks[0], Mapping) else False
            if enabled or old.get("versioning"):  # a bucket never versioned stays unversioned (not "Suspended")
                s3.put_bucket_versioning(Bucket=resource_id, VersioningConfiguration={
                    "Status": "Enabled" if enabled else "Suspended"})
        if config.get("tags"):
            s3.put_bucket_tagging(Bucket=resource_id, Tagging={"TagSet": tags_list(config["tags"])})
        elif "tags" in config and old.get("tags"):
            s3.delete_bucket_tagging(Bucket=resource_id)
        attributes = read_back(self, resource_id, config)
        return attributes

    def delete(self, resource_id: str, attributes: Mapping[str, Any]) -> None:
        s3 = self.clients.get("s3", region_of(attributes))
        if attributes.get("force_destroy"):
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=resource_id):
                doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                          for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                if doomed:
                    s3.delete_objects(Bucket=resource_id, Delete={"Objects": doomed})
        s3.delete_bucket(Bucket=resource_id)


