"""The aws provider, on boto3: credentials and endpoint from boto3's own chain (so
`AWS_ENDPOINT_URL` points it at a local endpoint), adaptive retries for throttling.

Refresh reads each type in batches (one Describe call with many ids or names, paginated), so its
cost grows with types and pages, not with resources. Creates are idempotent across a crash: an
object is found by its unique name, or for instances by an `opsgit:token` tag set atomically at
launch, and adopted instead of created twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opsgit.providers.aws.autoscaling import AutoscalingGroup, LaunchConfiguration, LaunchTemplate
from opsgit.providers.aws.common import TOKEN_TAG, Clients
from opsgit.providers.aws.instance import Instance
from opsgit.providers.aws.route53 import HostedZone, RecordSet
from opsgit.providers.aws.s3 import Bucket
from opsgit.providers.aws.security_group import SecurityGroup

__all__ = ["TOKEN_TAG", "AwsProvider", "make"]


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
