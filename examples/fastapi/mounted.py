"""A FastAPI application that serves the Reports page's endpoints as they are.

The ready service (``create_app``) is mounted under the host application's prefix: its own
sign-in by Rocket.Chat login token, its statuses and bodies, its OpenAPI document.
Run with ``uvicorn examples.fastapi.mounted:app``.
"""

from fastapi import FastAPI

from convstats_adapters import MemoryStore
from convstats_adapters.server import create_app

app = FastAPI()
app.mount("/reports", create_app(MemoryStore.from_path("examples/sample"), cache_ttl=60))
