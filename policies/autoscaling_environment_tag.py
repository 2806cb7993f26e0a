"""CKV_OPSGIT_1: every autoscaling group carries an Environment tag (the team's cost reports and
alert routing group instances by it)."""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


class AutoscalingGroupEnvironmentTag(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(name="Every autoscaling group has an Environment tag", id="CKV_OPSGIT_1",
                         categories=[CheckCategories.GENERAL_SECURITY],
                         supported_resources=["aws_autoscaling_group"],
                         guideline="policies/README.md#ckv_opsgit_1")

    def scan_resource_conf(self, conf):
        keys = []
        for field in ("tag", "tags"):
            for block in conf.get(field) or []:
                items = block if isinstance(block, list) else [block]
                for item in items:
                    if isinstance(item, dict):
                        key = item.get("key")
                        keys.append(key[0] if isinstance(key, list) else key)
        return CheckResult.PASSED if "Environment" in keys else CheckResult.FAILED


check = AutoscalingGroupEnvironmentTag()
