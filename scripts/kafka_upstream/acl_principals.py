"""Creates, through the management API, the users whose principals the suites' ACL tests name.

Kafka's ACLs bind any principal string; FerryMQ's ACLs are its users' permissions (docs/security.md,
"ACLs are permissions"), so CreateAcls for ``User:test1`` needs a user ``test1``. Kafka's fixtures
give the principals nothing else, so neither do we: no password anyone uses, no tags, no permission.

    python acl_principals.py HTTP_PORT NAME...
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import urllib.request


def put_user(port: int, name: str) -> None:
    body = json.dumps({"password": secrets.token_hex(16), "tags": ""}).encode()
    auth = "Basic " + base64.b64encode(b"guest:guest").decode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/users/{name}", data=body, method="PUT",
                                 headers={"content-type": "application/json", "authorization": auth})
    with urllib.request.urlopen(req, timeout=10):
        pass


if __name__ == "__main__":
    for user in sys.argv[2:]:
        put_user(int(sys.argv[1]), user)
