"""The floor: the least an HTTP service in front of the model can do — what no agent server can beat here.

``POST /chat`` takes the same body as chatplane's and the seed's, sends the message alone to the model as one chat
completion (the whole answer in one JSON body, as chatplane's ``POST /chat`` asks for it) on an aiohttp session
opened at start-up, and answers ``{"response": …}``. No graph, no storage, no history, no auth, no limits: FastAPI,
pydantic and one model call, on the same uvicorn (uvloop, httptools) as the other targets. Its overhead at one user
is what HTTP in and out, two event loops and this machine's wake-ups cost before any agent work; its throughput is
the ceiling for a Python service on the cores it shares with the mock and the load generator::

    OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 uvicorn benchmarks.floor_app:app --port 8002
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel


class ChatRequest(BaseModel):
    message: str
    user_id: str = "user"
    session_id: str | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    base = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8001/v1").rstrip("/")
    app.state.url = f"{base}/chat/completions"
    headers = {"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', 'x')}", "Content-Type": "application/json"}
    # As many connections as chatplane's model session allows (aiohttp's default of 100 would queue 200 users).
    connector = aiohttp.TCPConnector(limit=1000)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        app.state.session = session
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/chat")
async def chat(body: ChatRequest, request: Request) -> dict[str, Any]:
    payload = {"model": "mock", "messages": [{"role": "user", "content": body.message}]}
    async with request.app.state.session.post(request.app.state.url, data=orjson.dumps(payload)) as response:
        response.raise_for_status()
        answer = orjson.loads(await response.read())
    return {"response": answer["choices"][0]["message"]["content"], "session_id": body.session_id}
