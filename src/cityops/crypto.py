"""Secrets at rest: connector passwords and tokens encrypted with a key derived from the settings' secret key.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`); the key is derived with HKDF so the secret that signs
CSRF tokens is never used directly as an encryption key. Changing the secret key makes stored secrets unreadable:
`decrypt_json` then raises SecretsUnreadable and the feed asks for its secrets again.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretsUnreadable(ValueError):
    """Stored secrets cannot be decrypted with this installation's key."""


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"cityops-secrets", info=b"fernet-v1").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_json(secret_key: str, values: dict[str, Any]) -> str:
    """The values, encrypted; an empty dict encrypts to the empty string."""
    if not values:
        return ""
    return _fernet(secret_key).encrypt(orjson.dumps(values)).decode()


def decrypt_json(secret_key: str, token: str) -> dict[str, Any]:
    """The values encrypted by encrypt_json."""
    if not token:
        return {}
    try:
        result: dict[str, Any] = orjson.loads(_fernet(secret_key).decrypt(token.encode()))
    except (InvalidToken, orjson.JSONDecodeError) as exc:
        raise SecretsUnreadable("stored secrets cannot be read with this secret key") from exc
    return result
