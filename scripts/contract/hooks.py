"""Schemathesis hooks for the contract run (scripts/contract.sh).

- Long waits are cut short: a lock request's `timeout` and a claim's `wait` that the schema
  allows (up to 300 s and 60 s) become 1 s, so the run measures behaviour, not patience. Values
  outside the documented range are left alone: they are the negative cases.
- Webhook bodies are signed the way the reference's recipe signs them (HMAC-SHA256 over
  "<timestamp>.<json.dumps(payload, sort_keys=True, separators=(',', ':'))>") with the secret
  the run's server was given, so /webhook is tested past its signature check.
"""
import hashlib
import hmac
import json
import os
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


@schemathesis.hook
def map_case(context, case):
    operation = context.operation
    if operation is not None:
        shorten_waits(operation.path, case.body)
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
