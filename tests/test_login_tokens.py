"""Login tokens: Rocket.Chat's hash, signing in by token, and how the MongoDB store looks one up."""

from __future__ import annotations

from typing import Any

import mongomock
import pytest
from pymongo import AsyncMongoClient

from convstats.authz import RocketChatAuthority, hash_login_token
from convstats.errors import AuthenticationRequired, PermissionDenied, StorageUnavailable
from convstats.model import Caller, UserRecord
from convstats_adapters.documents import LOGIN_TOKEN_HASHES
from convstats_adapters.memory import MemoryStore
from convstats_adapters.mongo import MongoStore


@pytest.mark.parametrize(
    ("token", "hashed"),
    [
        # node -e "console.log(require('crypto').createHash('sha256').update(T).digest('base64'))"
        ("", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
        ("ana-session", "eY9KuERNWv+pTNpfwClon9036BIsMbimVuu3k7oHVkM="),
        ("ÿ", "6kf6ls9tcn0waJE9qRk/70SuxO4sWXLprFDPfWN6Vs8="),
        ("Zürich-😀", "SrjnloEHvxsceJ9UuQhdOIk+TabvLsRjBL5d+HufWqQ="),
        ("\ud800x", "qHzkZ5PMZZt5vRh+mY+EiGNfcH1b4JV+HVZZge/SsEs="),
    ],
)
def test_tokens_are_hashed_as_meteor_hashes_them(token, hashed):
    """The hash is Node's base64 SHA-256 of the UTF-8 bytes, a lone surrogate as U+FFFD."""
    assert hash_login_token(token) == hashed


def _users(*documents: dict[str, Any]) -> MemoryStore:
    return MemoryStore({"users": list(documents)})


def _with_tokens(user_id: str, *tokens: str, **fields: Any) -> dict[str, Any]:
    entries = [{"hashedToken": hash_login_token(token)} for token in tokens]
    return {"_id": user_id, "services": {"resume": {"loginTokens": entries}}, **fields}


def test_a_valid_token_proves_its_user():
    """A user's own token gives the caller with its roles."""
    store = _users(_with_tokens("ana", "t-ana", roles=["livechat-manager", 7]))
    caller = RocketChatAuthority(directory=store, require_token=True).authenticate("ana", "t-ana")
    assert caller == Caller("ana", ["livechat-manager"])


@pytest.mark.parametrize(
    ("user_id", "token"),
    [
        (None, "t-ana"),
        ("ana", None),
        ("", "t-ana"),
        ("ana", ""),
        ("ana", "t-bo"),  # another user's
        ("bo", "t-bo"),  # deactivated
        ("nobody", "t-ana"),
        (["ana"], "t-ana"),
        ("ana", b"t-ana"),
    ],
)
def test_anything_else_is_refused(user_id, token):
    """Missing, empty, foreign, odd or deactivated credentials all raise AuthenticationRequired."""
    store = _users(_with_tokens("ana", "t-ana"), _with_tokens("bo", "t-bo", active=False))
    with pytest.raises(AuthenticationRequired):
        RocketChatAuthority(directory=store, require_token=True).authenticate(user_id, token)


def test_a_token_is_checked_even_when_none_is_required():
    """A token given to a trusting authority is checked all the same; its roles then decide."""
    store = _users(_with_tokens("plain", "t", roles=["user"]))
    authority = RocketChatAuthority(directory=store)
    assert authority.authenticate("plain") == Caller("plain", ["user"])
    caller = authority.authenticate("plain", "t")
    with pytest.raises(AuthenticationRequired):
        authority.authenticate("plain", "wrong")
    with pytest.raises(PermissionDenied):
        authority.authorize(caller, "view-livechat-reports")


def test_a_storage_failure_is_not_a_refusal():
    """A directory that cannot be read raises StorageError, never a 401's AuthenticationRequired."""

    class Down:
        def user_with_token(self, user_id: str, hashed_token: str) -> UserRecord | None:
            raise StorageUnavailable("users: no server")

    with pytest.raises(StorageUnavailable):
        RocketChatAuthority(directory=Down(), require_token=True).authenticate(  # type: ignore[arg-type]
            "ana", "t"
        )


class _Recording:
    """A collection proxy that records each read's name, filter and projection."""

    def __init__(self, inner: Any, calls: list[tuple[str, Any, Any]]) -> None:
        self.inner, self.calls = inner, calls

    def find_one(self, query: Any, projection: Any = None, **options: Any) -> Any:
        self.calls.append(("find_one", query, projection))
        return self.inner.find_one(query, projection, **options)

    def find(self, query: Any, projection: Any = None, **options: Any) -> Any:
        self.calls.append(("find", query, projection))
        return self.inner.find(query, projection, **options)


def test_mongo_looks_a_token_up_in_one_query_on_the_id(monkeypatch):
    """The MongoDB store asks one find_one on _id and the hashed token, projecting no token."""
    client: Any = mongomock.MongoClient(tz_aware=True)
    client.rc.users.insert_many(
        [_with_tokens("ana", "t-ana", roles=["admin"]), _with_tokens("bo", "t-bo")]
    )
    store = MongoStore(client, database="rc")
    calls: list[tuple[str, Any, Any]] = []
    real = MongoStore._collection
    monkeypatch.setattr(
        MongoStore, "_collection", lambda self, name: _Recording(real(self, name), calls)
    )

    assert store.user_with_token("ana", hash_login_token("t-ana")) == UserRecord("ana", ["admin"])
    assert store.user_with_token("ana", hash_login_token("t-bo")) is None
    hashed = hash_login_token("t-ana")
    kind, query, projection = calls[0]
    assert (kind, query) == (
        "find_one",
        {"_id": {"$in": ["ana"]}, LOGIN_TOKEN_HASHES: {"$eq": hashed}},
    )
    assert set(projection) <= {"_id", "roles", "name", "active"}  # mongomock adds the _id
    assert [call[0] for call in calls] == ["find_one", "find_one"]


def test_an_async_client_is_refused_at_construction():
    """An AsyncMongoClient is a TypeError naming the synchronous client, not a failure later."""
    client: Any = AsyncMongoClient("mongodb://127.0.0.1:1/rc", connect=False)
    with pytest.raises(TypeError, match=r"synchronous pymongo\.MongoClient"):
        MongoStore(client)
