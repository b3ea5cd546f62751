"""CSRF tokens (double submit, signed with the secret key) and the session cookie."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SESSION_COOKIE = "cityops_session"
CSRF_COOKIE = "cityops_csrf"
LANGUAGE_COOKIE = "cityops_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def new_csrf_seed() -> str:
    """A random value for the CSRF cookie."""
    return secrets.token_urlsafe(24)


def csrf_token(secret: str, seed: str) -> str:
    """The token a form or script must send back: an HMAC of the cookie's seed."""
    return hmac.new(secret.encode(), seed.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, seed: str | None, token: str | None) -> bool:
    """Whether the token sent matches the seed in the cookie."""
    if not seed or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, seed), token)
