"""A FastAPI application that answers the by-tags report behind its own authentication.

The host application decides who the caller is (here a made-up bearer token naming a
Rocket.Chat user); the endpoint then applies that user's permission and scope, and
``handle_async`` runs the store's calls in worker threads, so the event loop never waits on
the store. Run with ``uvicorn examples.fastapi.embedded:app``.
"""

from typing import Annotated

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from convstats import ConversationsByTags, ConversationsEndpoint, RocketChatAuthority
from convstats_adapters import MemoryStore

store = MemoryStore.from_path("examples/sample")
endpoint = ConversationsEndpoint(
    reports=ConversationsByTags(store=store),
    authority=RocketChatAuthority(directory=store),
)
#: The host application's own sessions: bearer tokens to Rocket.Chat user ids.
SESSIONS = {"host-session-1": "u-manager", "host-session-2": "u-monitor"}

app = FastAPI()


@app.get("/api/tags")
async def tags(request: Request, authorization: Annotated[str, Header()] = "") -> JSONResponse:
    user_id = SESSIONS.get(authorization.removeprefix("Bearer "))
    if user_id is None:
        raise HTTPException(status_code=401, detail="sign in to the host application first")
    response = await endpoint.handle_async(dict(request.query_params), user_id)
    return JSONResponse(response.body, status_code=response.status)
