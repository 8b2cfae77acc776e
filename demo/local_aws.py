"""Local stand-ins for the sample's AWS resources: moto in server mode on loopback.

The bucket and table are created from the synthesized template's own resource
properties (key schema, billing mode), under local names the demo chooses, and every
``Ref`` in the function's environment is resolved to those names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from harness._shared.moto import CREDENTIALS, REGION, MotoServer


def aws_client(server: MotoServer, service: str) -> Any:
    """A boto3 client for ``service`` on the moto server."""
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
    )


@dataclass(frozen=True)
class LocalResources:
    """Template logical id -> the local (moto) name it stands for."""

    names: Mapping[str, str]

    def resolve(self, value: Any) -> str:
        """Resolve an environment value from the template: a literal or a ``Ref`` to a created resource."""
        if isinstance(value, (str, int, float, bool)):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self.names:
            return self.names[value["Ref"]]
        raise ValueError(f"cannot resolve {value!r} locally: only literals and Refs to {sorted(self.names)}")

    def resolve_env(self, variables: Mapping[str, Any]) -> dict[str, str]:
        return {name: self.resolve(value) for name, value in variables.items()}


def create_resources(
    server: MotoServer, resources: Mapping[str, Mapping[str, Any]], local_names: Mapping[str, str]
) -> LocalResources:
    """Create each template resource in ``local_names`` (logical id -> local name) in moto."""
    for logical_id, name in local_names.items():
        res = resources[logical_id]
        kind, props = res["Type"], res.get("Properties", {})
        if kind == "AWS::S3::Bucket":
            aws_client(server, "s3").create_bucket(Bucket=name)
        elif kind == "AWS::DynamoDB::Table":
            aws_client(server, "dynamodb").create_table(
                TableName=name,
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode=props.get("BillingMode", "PROVISIONED"),
                **(
                    {"ProvisionedThroughput": props["ProvisionedThroughput"]}
                    if "ProvisionedThroughput" in props
                    else {}
                ),
            )
        else:
            raise ValueError(f"{logical_id}: no local stand-in for {kind}")
    return LocalResources(names=dict(local_names))


def ensure_no_proxy_for_loopback() -> None:
    """boto3 and urllib honour proxy settings; loopback must never go through one."""
    for var in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(var, "")
        if "127.0.0.1" not in current:
            os.environ[var] = ",".join(p for p in (current, "127.0.0.1", "localhost") if p)
