"""Schemathesis hooks for the contract run (scripts/contract.sh).

- Long waits are cut short: a lock request's `timeout` and a claim's `wait` that the schema
  allows (up to 300 s and 60 s) become 1 s, so the run measures behaviour, not patience. Values
  outside the documented range are left alone: they are the negative cases.
- A callback URL whose host is an address literal or localhost has that host replaced by a
  public name: callbacks into the server's own network are refused with 400 (tested in the
  suite), which the URL pattern cannot state (`127.1`, `2130706433` and `0x7f.0.0.1` are all
  the loopback). Only URLs that match the documented pattern are changed, so the negative cases
  stay negative.
- Webhook bodies are signed the way the reference's recipe signs them (HMAC-SHA256 over
  "<timestamp>.<json.dumps(payload, sort_keys=True, separators=(',', ':'))>") with the secret
  the run's server was given, so /webhook is tested past its signature check.
"""
import hashlib
import hmac
import json
import os
import re
import socket
import time

import schemathesis

SECRET = os.environ.get("ORCH_CONTRACT_WEBHOOK_SECRET", "")


def shorten_waits(path, body):
    if not isinstance(body, dict):
        return
    if path == "/locks" and type(body.get("timeout")) is int and 1 < body["timeout"] <= 300:
        body["timeout"] = 1
    if path == "/cores/{core_id}/claim" and type(body.get("wait")) is int and 1 < body["wait"] <= 60:
        body["wait"] = 1


CALLBACK_PATTERN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$")


def is_address_or_localhost(host):
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        socket.inet_aton(host)
        return True
    except OSError:
        return False


def public_callback(metadata):
    if not isinstance(metadata, dict):
        return
    url = metadata.get("callback_url")
    if not isinstance(url, str) or not CALLBACK_PATTERN.match(url):
        return
    scheme, rest = url.split("://", 1)
    host = re.match(r"[A-Za-z0-9.-]+", rest).group(0)
    if is_address_or_localhost(host):
        metadata["callback_url"] = f"{scheme}://hooks.example.com{rest[len(host):]}"


def public_callbacks(body):
    if not isinstance(body, dict):
        return
    public_callback(body.get("metadata"))
    if isinstance(body.get("task"), dict):
        public_callback(body["task"].get("metadata"))
    if isinstance(body.get("tasks"), list):
        for task in body["tasks"]:
            if isinstance(task, dict):
                public_callback(task.get("metadata"))


@schemathesis.hook
def map_case(context, case):
    operation = context.operation
    if operation is not None:
        shorten_waits(operation.path, case.body)
        public_callbacks(case.body)
    # Only cases that carry the header: a case without it tests that it is required.
    headers = case.headers or {}
    if (operation is not None and operation.path == "/webhook" and SECRET and isinstance(case.body, dict)
            and "X-Signature" in headers):
        timestamp = int(time.time())
        payload = json.dumps(case.body, sort_keys=True, separators=(",", ":"))
        digest = hmac.new(SECRET.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
        headers = dict(headers)
        headers["X-Signature"] = f"t={timestamp},v1={digest}"
        case.headers = headers
    return case
