"""Fetch Loki credentials once at init from Secrets Manager or SSM Parameter Store.

Standard library only (botocore's location differs between runtimes and the extension
runs isolated): the two JSON-protocol calls are signed with SigV4 here, using the
function's credentials from the environment. Standard endpoint overrides
(``AWS_ENDPOINT_URL_SECRETS_MANAGER``, ``AWS_ENDPOINT_URL_SSM``, ``AWS_ENDPOINT_URL``)
are honoured, which is also how tests point this at moto's server. Secret values are
never logged; errors name the ARN and the AWS error code only.
"""

from __future__ import annotations

import time

from . import http11

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

ALGORITHM = "AWS4-HMAC-SHA256"
FETCH_TIMEOUT_S = 5.0
_SERVICES = {
    # ARN service -> (signing name, endpoint prefix, X-Amz-Target, endpoint override variable)
    "secretsmanager": ("secretsmanager", "secretsmanager", "secretsmanager.GetSecretValue",
                       "AWS_ENDPOINT_URL_SECRETS_MANAGER"),
    "ssm": ("ssm", "ssm", "AmazonSSM.GetParameter", "AWS_ENDPOINT_URL_SSM"),
}


class SecretError(Exception):
    """The secret could not be fetched or understood (message is safe to log)."""


def _hmac(key: bytes, msg: str) -> bytes:
    import hashlib
    import hmac

    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="-_.~")


def sign_v4(
    *,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    region: str,
    service: str,
    access_key: str,
    secret_key: str,
    session_token: str | None,
    amz_date: str,
) -> dict[str, str]:
    """Headers to add for AWS Signature Version 4 (``amz_date`` like ``20150830T123600Z``)."""
    import hashlib

    out = {"X-Amz-Date": amz_date}
    if session_token:
        out["X-Amz-Security-Token"] = session_token
    all_headers = {k.lower(): " ".join(str(v).strip().split()) for k, v in headers.items()}
    all_headers["host"] = host
    all_headers.update({k.lower(): v for k, v in out.items()})
    names = sorted(all_headers)
    canonical_headers = "".join(f"{n}:{all_headers[n]}\n" for n in names)
    signed_headers = ";".join(names)
    canonical_query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items()))
    canonical_path = "/".join(_quote(seg) for seg in (path or "/").split("/"))
    canonical_request = "\n".join([
        method, canonical_path, canonical_query, canonical_headers, signed_headers,
        hashlib.sha256(body).hexdigest(),
    ])
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope,
                                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    key = _hmac(("AWS4" + secret_key).encode("utf-8"), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    import hmac

    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"{ALGORITHM} Credential={access_key}/{scope}, "
                            f"SignedHeaders={signed_headers}, Signature={signature}")
    return out


def _endpoint(env: Mapping[str, str], arn_service: str, region: str, partition: str) -> str:
    _, prefix, _, override = _SERVICES[arn_service]
    url = env.get(override, "").strip() or env.get("AWS_ENDPOINT_URL", "").strip()
    if url:
        return url
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://{prefix}.{region}.{suffix}"


def _call(env: Mapping[str, str], arn: str) -> Any:
    import json

    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] not in _SERVICES:
        raise SecretError(f"not a Secrets Manager or SSM ARN: {arn!r}")
    partition, arn_service, region = parts[1], parts[2], parts[3] or env.get("AWS_REGION", "")
    if not region:
        raise SecretError(f"no region in {arn!r} and AWS_REGION is not set")
    access_key = env.get("AWS_ACCESS_KEY_ID", "")
    secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
    if not access_key or not secret_key:
        raise SecretError("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set in the environment")
    signing_name, _, target, _ = _SERVICES[arn_service]
    if arn_service == "secretsmanager":
        payload: dict[str, Any] = {"SecretId": arn}
    else:
        # GetParameter takes the name, or the full ARN for parameters of this account.
        payload = {"Name": arn, "WithDecryption": True}
    body = json.dumps(payload).encode()
    endpoint = _endpoint(env, arn_service, region, partition)
    scheme, _, rest = endpoint.partition("://")
    authority, _, base_path = rest.partition("/")
    tls = scheme.lower() == "https"
    host, port = http11.split_hostport(authority, 443 if tls else 80)
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    headers.update(sign_v4(
        method="POST", host=authority, path="/" + base_path, query={}, headers=headers, body=body,
        region=region, service=signing_name, access_key=access_key, secret_key=secret_key,
        session_token=env.get("AWS_SESSION_TOKEN") or None,
        amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
    ))
    resp = _post(host, port, tls, authority, "/" + base_path, headers, body)
    if resp.status != 200:
        code = ""
        try:
            err = json.loads(resp.body)
            code = str(err.get("__type", "")).rsplit("#", 1)[-1] if isinstance(err, dict) else ""
        except ValueError:
            pass
        raise SecretError(f"{target} for {arn!r} answered HTTP {resp.status} {code}".rstrip())
    try:
        return json.loads(resp.body)
    except ValueError as e:
        raise SecretError(f"{target} for {arn!r} returned a body that is not JSON") from e


def _post(host: str, port: int, tls: bool, host_header: str, path: str, headers: dict[str, str],
          body: bytes) -> http11.Response:
    sock = http11.connect((host, port), FETCH_TIMEOUT_S, tls=tls)
    try:
        sock.settimeout(FETCH_TIMEOUT_S)
        all_headers = dict(headers)
        all_headers["Connection"] = "close"
        sock.sendall(http11.encode_request("POST", path, host_header, all_headers, body))
        return http11.read_response(http11.SocketReader(sock))
    finally:
        sock.close()


def fetch_secret_string(env: Mapping[str, str], arn: str) -> str:
    """The secret's string value (Secrets Manager SecretString or SSM parameter value)."""
    try:
        result = _call(env, arn)
    except OSError as e:
        raise SecretError(f"cannot reach the endpoint for {arn!r}: {type(e).__name__}: {e}") from e
    if not isinstance(result, dict):
        raise SecretError(f"unexpected reply for {arn!r}")
    if ":secretsmanager:" in arn:
        value = result.get("SecretString")
        if not isinstance(value, str):
            raise SecretError(f"secret {arn!r} has no SecretString (binary secrets are not supported)")
        return value
    param = result.get("Parameter")
    value = param.get("Value") if isinstance(param, dict) else None
    if not isinstance(value, str):
        raise SecretError(f"parameter {arn!r} has no Value")
    return value


def _maybe_json(value: str) -> Any:
    import json

    s = value.strip()
    if s.startswith("{"):
        try:
            return json.loads(s)
        except ValueError:
            return None
    return None


def basic_auth_header(value: str) -> str:
    """``Basic …`` from ``user:password`` or ``{"username": …, "password": …}``."""
    import base64

    obj = _maybe_json(value)
    if isinstance(obj, dict):
        user, pw = obj.get("username", obj.get("user")), obj.get("password")
        if not isinstance(user, str) or not isinstance(pw, str):
            raise SecretError('basic-auth secret JSON needs string "username" and "password" keys')
        pair = f"{user}:{pw}"
    else:
        pair = value.strip()
        if ":" not in pair:
            raise SecretError('basic-auth secret must be "user:password" or {"username": …, "password": …}')
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def bearer_header(value: str) -> str:
    """``Bearer …`` from the raw token or ``{"token": …}``."""
    obj = _maybe_json(value)
    token = value.strip()
    if isinstance(obj, dict):
        t = obj.get("token", obj.get("bearer_token"))
        if not isinstance(t, str):
            raise SecretError('bearer-token secret JSON needs a string "token" key')
        token = t.strip()
    if not token or any(c in token for c in "\r\n"):
        raise SecretError("bearer-token secret is empty or contains line breaks")
    return "Bearer " + token
