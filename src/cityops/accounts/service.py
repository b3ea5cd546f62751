"""The rules of accounts: agencies, users, log-in with lock-out, sessions, API keys and the audit log."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from cityops.accounts.models import Agency, ApiKey, AuditEntry, User, UserSession, api_key_feeds
from cityops.accounts.roles import ROLES, Principal
from cityops.feeds.models import Feed

AGENCY_KINDS = ("province", "department", "commune", "unit")
KEY_PREFIX = "cok"
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Made on first use, not at import: every `cityops` command would otherwise pay for an argon2 hash.
    return _hasher.hash("cityops-timing-equaliser")


class AccountError(ValueError):
    """A request about accounts that cannot be done, with a message for the person who asked."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change, for the audit log."""

    label: str
    user_id: int | None = None
    api_key_id: int | None = None
    ip: str = ""

    @classmethod
    def of(cls, principal: Principal, ip: str = "") -> Actor:
        return cls(principal.label, principal.user_id, principal.api_key_id, ip)


SYSTEM = Actor("system")


def audit(
    session: Session,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object,
    now: datetime,
    details: dict[str, Any] | None = None,
) -> None:
    """Record one change in the audit log, in the same transaction as the change."""
    session.add(
        AuditEntry(
            at=now,
            actor=actor.label,
            actor_user_id=actor.user_id,
            actor_key_id=actor.api_key_id,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            details=details or {},
            ip=actor.ip,
        )
    )


# --- agencies ---------------------------------------------------------------------------------------


def create_agency(
    session: Session,
    actor: Actor,
    now: datetime,
    *,
    code: str,
    name_vi: str,
    name_en: str = "",
    kind: str = "department",
    parent_code: str = "",
) -> Agency:
    """Create an agency under its parent (none for the province)."""
    if kind not in AGENCY_KINDS:
        raise AccountError(f"kind must be one of {', '.join(AGENCY_KINDS)}")
    if session.scalar(select(Agency.id).where(Agency.code == code)) is not None:
        raise AccountError(f"agency {code!r} already exists")
    parent_id = None
    if parent_code:
        parent_id = session.scalar(select(Agency.id).where(Agency.code == parent_code))
        if parent_id is None:
            raise AccountError(f"parent agency {parent_code!r} does not exist")
    agency = Agency(
        code=code, name_vi=name_vi, name_en=name_en or name_vi, kind=kind, parent_id=parent_id, created_at=now
    )
    session.add(agency)
    session.flush()
    audit(
        session,
        actor,
        "agency.create",
        "agency",
        agency.id,
        now,
        {"code": code, "name_vi": name_vi, "kind": kind, "parent": parent_code},
    )
    return agency


def get_agency(session: Session, code: str) -> Agency:
    """The agency with this code, or an AccountError."""
    agency = session.scalar(select(Agency).where(Agency.code == code))
    if agency is None:
        raise AccountError(f"agency {code!r} does not exist")
    return agency


def agency_subtree(session: Session, agency_id: int | None) -> frozenset[int]:
    """The agency and every agency below it."""
    if agency_id is None:
        return frozenset()
    children: dict[int | None, list[int]] = {}
    for agency_id_, parent_id in session.execute(select(Agency.id, Agency.parent_id)):
        children.setdefault(parent_id, []).append(agency_id_)
    found, stack = set(), [agency_id]
    while stack:
        current = stack.pop()
        if current in found:
            continue
        found.add(current)
        stack.extend(children.get(current, []))
    return frozenset(found)


# --- users and log-in -------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def create_user(
    session: Session,
    actor: Actor,
    now: datetime,
    *,
    username: str,
    password: str,
    role: str,
    agency_code: str = "",
    full_name: str = "",
    language: str = "vi",
    email: str = "",
    phone: str = "",
    is_agency_head: bool = False,
) -> User:
    """Create a user; agency roles need an agency."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"user {username!r} already exists")
    agency_id = get_agency(session, agency_code).id if agency_code else None
    if role in ("officer", "handler") and agency_id is None:
        raise AccountError(f"a user with role {role!r} must belong to an agency")
    user = User(
        username=username,
        full_name=full_name,
        password_hash=hash_password(password),
        role=role,
        agency_id=agency_id,
        language=language,
        email=email,
        phone=phone,
        is_agency_head=is_agency_head,
        is_active=True,
        failed_logins=0,
        created_at=now,
    )
    session.add(user)
    session.flush()
    audit(
        session, actor, "user.create", "user", user.id, now, {"username": username, "role": role, "agency": agency_code}
    )
    return user


MIN_PASSWORD_LENGTH = 10


def update_user(
    session: Session,
    actor: Actor,
    now: datetime,
    username: str,
    *,
    role: str | None = None,
    agency_code: str | None = None,
    active: bool | None = None,
    password: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    is_agency_head: bool | None = None,
) -> User:
    """Change a user's role, agency, active state or password; every change is audited, sessions end on a change."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AccountError(f"user {username!r} does not exist")
    changes: dict[str, Any] = {}
    if role is not None and role != user.role:
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        changes["role"] = [user.role, role]
        user.role = role
    if agency_code is not None:
        agency_id = get_agency(session, agency_code).id if agency_code else None
        if agency_id != user.agency_id:
            changes["agency"] = agency_code
            user.agency_id = agency_id
    if user.role in ("officer", "handler") and user.agency_id is None:
        raise AccountError(f"a user with role {user.role!r} must belong to an agency")
    for field, value in (("email", email), ("phone", phone), ("is_agency_head", is_agency_head)):
        if value is not None and value != getattr(user, field):
            changes[field] = value
            setattr(user, field, value)
    if active is not None and active != user.is_active:
        changes["active"] = active
        user.is_active = active
    if password is not None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
        user.password_hash = hash_password(password)
        user.failed_logins, user.locked_until = 0, None
        changes["password_changed"] = True
    if changes.keys() & {"role", "agency", "active", "password_changed"}:
        # What someone could do changed: their open sessions must log in again.
        session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    if changes:
        audit(session, actor, "user.update", "user", user.id, now, {"username": username, **changes})
    return user


def list_users(session: Session) -> list[User]:
    """Every user, by username."""
    return list(session.scalars(select(User).order_by(User.username)))


def list_api_keys(session: Session) -> list[tuple[ApiKey, list[str]]]:
    """Every key with the codes of the feeds it may write, newest first."""
    feeds: dict[int, list[str]] = {}
    for key_id, feed_code in session.execute(
        select(api_key_feeds.c.api_key_id, Feed.code).join(Feed, Feed.id == api_key_feeds.c.feed_id)
    ):
        feeds.setdefault(key_id, []).append(feed_code)
    keys = session.scalars(select(ApiKey).order_by(ApiKey.id.desc()))
    return [(key, sorted(feeds.get(key.id, []))) for key in keys]


@dataclass(frozen=True)
class LoginResult:
    """What a log-in attempt gave: a user, or why not."""

    user: User | None
    locked_minutes: int = 0


def authenticate(
    session: Session, username: str, password: str, now: datetime, *, ip: str, max_failures: int, lockout: timedelta
) -> LoginResult:
    """Check a password; count failures and lock the account after max_failures of them in a row."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        _verify(_dummy_hash(), password)  # same work whether or not the user exists
        return LoginResult(None)
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, locked_minutes=max(1, int((user.locked_until - now).total_seconds() // 60) + 1))
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = now + lockout
            user.failed_logins = 0
            audit(
                session,
                Actor(username, user.id, ip=ip),
                "user.locked",
                "user",
                user.id,
                now,
                {"minutes": int(lockout.total_seconds() // 60)},
            )
            return LoginResult(None, locked_minutes=int(lockout.total_seconds() // 60))
        return LoginResult(None)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit(session, Actor(username, user.id, ip=ip), "user.login", "user", user.id, now)
    return LoginResult(user)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, user: User, now: datetime, *, hours: int, ip: str, user_agent: str) -> str:
    """Start a server-side session; returns the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    return token


def close_session(session: Session, token: str, now: datetime, ip: str = "") -> None:
    """End a session (log-out)."""
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _token_hash(token)))
    if row is not None:
        username = session.scalar(select(User.username).where(User.id == row.user_id)) or f"user:{row.user_id}"
        audit(session, Actor(username, row.user_id, ip=ip), "user.logout", "user", row.user_id, now)
        session.delete(row)


def user_for_session(session: Session, token: str, now: datetime) -> User | None:
    """The active user behind a session token, if the session is still valid."""
    row = session.execute(
        select(User, UserSession.expires_at)
        .join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.token_hash == _token_hash(token))
    ).first()
    if row is None or row.expires_at <= now or not row.User.is_active:
        return None
    return row.User


def principal_for_user(session: Session, user: User) -> Principal:
    """The principal of a logged-in user."""
    return Principal(
        role=user.role,
        label=user.username,
        user_id=user.id,
        agency_id=user.agency_id,
        agency_ids=agency_subtree(session, user.agency_id),
        language=user.language,
    )


def purge_expired_sessions(session: Session, now: datetime) -> int:
    """Delete sessions past their expiry."""
    result = session.execute(delete(UserSession).where(UserSession.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)


# --- API keys ---------------------------------------------------------------------------------------


def create_api_key(
    session: Session, actor: Actor, now: datetime, *, agency_code: str, feed_codes: list[str], name: str = ""
) -> tuple[ApiKey, str]:
    """Create a key for an agency and the feeds it may write; returns the key and its secret (shown once)."""
    agency = get_agency(session, agency_code)
    feeds = list(session.scalars(select(Feed).where(Feed.code.in_(feed_codes))))
    missing = sorted(set(feed_codes) - {feed.code for feed in feeds})
    if missing:
        raise AccountError(f"feeds do not exist: {', '.join(missing)}")
    foreign = sorted(feed.code for feed in feeds if feed.agency_id != agency.id)
    if foreign:
        raise AccountError(f"feeds belong to another agency: {', '.join(foreign)}")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    full_key = f"{KEY_PREFIX}_{prefix}_{secret}"
    key = ApiKey(
        prefix=prefix,
        key_hash=_token_hash(full_key),
        name=name or f"{agency_code} key",
        agency_id=agency.id,
        created_by_id=actor.user_id,
        created_at=now,
    )
    session.add(key)
    session.flush()
    if feeds:
        session.execute(insert(api_key_feeds), [{"api_key_id": key.id, "feed_id": feed.id} for feed in feeds])
    audit(
        session,
        actor,
        "api_key.create",
        "api_key",
        key.id,
        now,
        {"prefix": prefix, "agency": agency_code, "feeds": sorted(feed_codes), "name": key.name},
    )
    return key, full_key


def revoke_api_key(session: Session, actor: Actor, now: datetime, prefix: str) -> ApiKey:
    """Revoke a key by its prefix (the part after cok_); it stops working at once."""
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise AccountError(f"no API key with prefix {prefix!r}")
    if key.revoked_at is None:
        key.revoked_at = now
        audit(session, actor, "api_key.revoke", "api_key", key.id, now, {"prefix": prefix})
    return key


def principal_for_api_key(session: Session, full_key: str, now: datetime) -> tuple[Principal | None, bool]:
    """The principal of a valid, unrevoked API key, and whether its last-used time is due a refresh."""
    parts = full_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None, False
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or key.revoked_at is not None:
        return None, False
    if not hmac.compare_digest(key.key_hash, _token_hash(full_key)):
        return None, False
    feed_ids = tuple(
        session.scalars(
            select(api_key_feeds.c.feed_id)
            .where(api_key_feeds.c.api_key_id == key.id)
            .order_by(api_key_feeds.c.feed_id)
        )
    )
    principal = Principal(
        role="api_key",
        label=f"key:{key.prefix}",
        api_key_id=key.id,
        agency_id=key.agency_id,
        agency_ids=agency_subtree(session, key.agency_id),
        feed_ids=feed_ids,
        csrf_exempt=True,
    )
    due = key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1)
    return principal, due


def touch_api_key(session: Session, api_key_id: int, now: datetime) -> None:
    """Record that a key was used now."""
    session.execute(update(ApiKey).where(ApiKey.id == api_key_id).values(last_used_at=now))


def list_audit(session: Session, *, limit: int = 100, offset: int = 0, entity_type: str = "") -> list[AuditEntry]:
    """The newest audit entries first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    if entity_type:
        query = query.where(AuditEntry.entity_type == entity_type)
    return list(session.scalars(query))
