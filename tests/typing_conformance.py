"""Typed assignments that mypy checks: every adapter conforms to the ports it implements.

Not a test module (pytest does not collect it); ``mypy`` reads it with the package.
"""

from __future__ import annotations

from convstats.authz import OperatorAuthority, RocketChatAuthority
from convstats.ports import Authority, Workspace
from convstats_adapters.memory import MemoryStore
from convstats_adapters.mongo import MongoStore
from convstats_adapters.tokens import ProvenCaller


def memory_store_conforms(store: MemoryStore) -> Workspace:
    return store


def mongo_store_conforms(store: MongoStore) -> Workspace:
    return store


def authorities_conform(
    rocketchat: RocketChatAuthority, operator: OperatorAuthority
) -> tuple[Authority, Authority]:
    return rocketchat, operator


def proven_caller_conforms(authority: ProvenCaller) -> Authority:
    return authority
