"""Typed assignments that mypy checks: every adapter conforms to the ports it implements.

Not a test module (pytest does not collect it); ``mypy`` reads it with the package.
"""

from __future__ import annotations

from convstats.authz import OperatorAuthority, RocketChatAuthority
from convstats.ports import Aged, Authority, Directory, RoomStore, Versioned, Workspace
from convstats_adapters.memory import MemoryDirectory, MemoryRooms, MemoryStore
from convstats_adapters.mirror import MongoMirror
from convstats_adapters.mongo import MongoStore


def memory_store_conforms(store: MemoryStore) -> Workspace:
    return store


def memory_store_is_versioned(store: MemoryStore) -> Versioned:
    return store


def mongo_store_conforms(store: MongoStore) -> Workspace:
    return store


def authorities_conform(
    rocketchat: RocketChatAuthority, operator: OperatorAuthority
) -> tuple[Authority, Authority]:
    return rocketchat, operator


def memory_rooms_conform(rooms: MemoryRooms) -> tuple[RoomStore, Versioned]:
    return rooms, rooms


def memory_directory_conforms(directory: MemoryDirectory) -> Directory:
    return directory


def mongo_mirror_conforms(mirror: MongoMirror) -> tuple[Workspace, Versioned, Aged]:
    return mirror, mirror, mirror
