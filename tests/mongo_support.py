"""MongoDB for tests: mongomock, or the real server named by CONVSTATS_MONGODB_URI."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import mongomock
from pymongo import MongoClient, ReadPreference

from convstats_adapters.mongo import MongoStore

MONGODB_URI_VARIABLE = "CONVSTATS_MONGODB_URI"
#: The real server the tests marked ``mongodb`` run against; ``None`` when there is none.
MONGODB_URI = os.environ.get(MONGODB_URI_VARIABLE) or None
NOT_CONFIGURED = f"real MongoDB not tested: {MONGODB_URI_VARIABLE} is not set"


def masked(uri: str) -> str:
    """The URI without its credentials, for printing."""
    return re.sub(r"//[^@/]*@", "//***@", uri)


@contextlib.contextmanager
def mongo_store(
    collections: dict[str, list[dict[str, Any]]], *, uri: str | None
) -> Iterator[MongoStore]:
    """Yield a MongoStore whose database holds ``collections``, inserted as they are.

    With ``uri=None`` the database lives in a fresh ``mongomock.MongoClient``; with a URI it
    is a uniquely named database on that server, dropped afterwards.
    """
    name = f"convstats_test_{uuid.uuid4().hex[:12]}"
    client: Any = (
        mongomock.MongoClient(tz_aware=True)
        if uri is None
        else MongoClient(uri, tz_aware=True)  # the URI's own options, timeouts included
    )
    try:
        database = client[name]
        for collection, documents in collections.items():
            if documents:
                # Copies: insert_many adds an _id to documents that lack one.
                database[collection].insert_many([dict(document) for document in documents])
        # Reads from a secondary could miss what was just written on a replica set.
        yield MongoStore(client, database=name, read_preference=ReadPreference.PRIMARY)
    finally:
        if uri is not None:
            client.drop_database(name)
        client.close()
