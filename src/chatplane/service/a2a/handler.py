"""The A2A request handler: a2a-sdk's ``RequestHandler`` interface, answered by chatplane's owner-scoped services.

a2a-sdk's own ``DefaultRequestHandler`` keeps tasks in a ``TaskStore`` and runs an ``AgentExecutor`` in-process;
chatplane already keeps both, in its run records and run engine, shared by every process. So this handler
translates each A2A call onto ``agent.for_user(owner)`` — no second store, no second run engine:

* ``SendMessage`` / ``message/send``: a run on the context's thread (a new thread without ``contextId``), waited
  for unless ``returnImmediately``; ``SendStreamingMessage`` / ``message/stream``: the same run, its events
  streamed (``tasks.TaskStream``).
* ``GetTask`` / ``tasks/get``, ``CancelTask`` / ``tasks/cancel``, ``SubscribeToTask`` / ``tasks/resubscribe``:
  the caller's run of this assistant; another user's run, or a run of another assistant, is "task not found",
  the same as a missing one.
* Push notifications, the task list and the extended card are not supported (their errors say so).

Every refusal is an A2A error with chatplane's message (never an exception's text): bad input →
``InvalidParamsError``, a missing task → ``TaskNotFoundError``, a failing dependency → ``InternalError``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from a2a.server.context import ServerCallContext
from a2a.server.events.event_queue import Event
from a2a.server.request_handlers import RequestHandler
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    A2AError,
    ContentTypeNotSupportedError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from chatplane.agent import ProductionAgent
from chatplane.core import UserServices
from chatplane.errors import (
    ChatplaneError,
    InvalidInputError,
    RunNotFoundError,
    ThreadNotFoundError,
)
from chatplane.failures import as_chatplane_error
from chatplane.service.a2a.tasks import TaskStream, failure_text, task_of
from chatplane.service.auth import User
from chatplane.service.ratelimit import RateLimits
from chatplane.storage.runs import Run


@dataclass(frozen=True)
class Caller:
    """Who calls, and the endpoint's assistant (what its threads record as their agent: a graph id, or the id of
    one of the caller's assistants): what the route puts in the call context (``ServerCallContext``'s
    ``state["caller"]``) once it has authenticated the request and found the assistant."""

    user: User
    assistant: str


class ChatplaneRequestHandler(RequestHandler):
    def __init__(self, agent: ProductionAgent, limits: RateLimits) -> None:
        self._agent = agent
        self._limits = limits

    # -- messages -------------------------------------------------------------------------------------------------

    async def on_message_send(self, params: pb.SendMessageRequest, context: ServerCallContext) -> pb.Task:
        caller = _caller(context)
        with _translated("message/send"):
            mine, run = await self._start(caller, params, stream=False)
            if params.configuration.return_immediately:
                return task_of(await mine.runs.get(run.run_id))
            last, answer = await mine.runs.outcome(run)
            failure = failure_text(last) if last is not None else None
            run = await mine.runs.get(run.run_id)
            text = str(answer["content"]) if answer else None
            return task_of(run, answer=text, failure=failure, history_length=_history_length(params))

    async def on_message_send_stream(
        self, params: pb.SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        caller = _caller(context)
        with _translated("message/stream"):
            mine, run = await self._start(caller, params, stream=True)
            yield task_of(run)
            async for event in TaskStream(run).events(mine.runs.events(run, run.resumed_after)):
                yield event

    async def _start(self, caller: Caller, params: pb.SendMessageRequest, *, stream: bool) -> tuple[UserServices, Run]:
        """The run the message starts, on the context's thread or on a new one."""
        message = params.message
        if message.task_id:
            raise UnsupportedOperationError(
                "taskId: a task cannot be continued; send the next message in its context (contextId) instead."
            )
        if message.role not in (pb.ROLE_USER, pb.ROLE_UNSPECIFIED):
            raise InvalidParamsError("message.role must be ROLE_USER.")
        text = _text(message)
        mine = self._agent.for_user(caller.user.id)
        assistant = caller.assistant
        await self._limits.check_new_run(caller.user)
        thread_id = message.context_id or str(uuid.uuid4())
        try:
            run = await mine.runs.send(
                thread_id,
                text,
                multitask="enqueue",
                stream_tokens=stream,
                agent=assistant,
                create_as=None if message.context_id else assistant,
            )
        except ThreadNotFoundError:
            raise InvalidParamsError(
                "contextId: no conversation of yours has that id; leave it out to start a new one."
            ) from None
        return mine, run

    # -- tasks ----------------------------------------------------------------------------------------------------

    async def on_get_task(self, params: pb.GetTaskRequest, context: ServerCallContext) -> pb.Task | None:
        caller = _caller(context)
        with _translated("tasks/get"):
            mine, run = await self._task(caller, params.id)
            answer = failure = None
            if run.finished:  # its outcome, from its events while they are kept (else its status alone)
                last, found = await mine.runs.outcome(run)
                answer = str(found["content"]) if found else None
                failure = failure_text(last) if last is not None else None
            limit = params.history_length if params.HasField("history_length") else None
            return task_of(run, answer=answer, failure=failure, history_length=limit)

    async def on_cancel_task(self, params: pb.CancelTaskRequest, context: ServerCallContext) -> pb.Task | None:
        caller = _caller(context)
        with _translated("tasks/cancel"):
            mine, run = await self._task(caller, params.id)
            if run.finished:
                raise TaskNotCancelableError(f"The task is already {run.status}.")
            await mine.runs.cancel(run)
            return task_of(await mine.runs.get(run.run_id), failure="The task was canceled.")

    async def on_subscribe_to_task(
        self, params: pb.SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event]:
        caller = _caller(context)
        with _translated("tasks/resubscribe"):
            mine, run = await self._task(caller, params.id)
            if run.finished:
                raise UnsupportedOperationError(f"The task is already {run.status}: get it with GetTask.")
            yield task_of(run)
            async for event in TaskStream(run).events(mine.runs.events(run)):
                yield event

    async def _task(self, caller: Caller, task_id: str) -> tuple[UserServices, Run]:
        """The caller's run ``task_id`` of this endpoint's assistant, or "task not found"."""
        mine = self._agent.for_user(caller.user.id)
        try:
            run = await mine.runs.get(task_id) if task_id else None
        except (RunNotFoundError, InvalidInputError):
            run = None
        if run is None or run.agent != caller.assistant:
            raise TaskNotFoundError()
        return mine, run

    async def on_list_tasks(self, params: pb.ListTasksRequest, context: ServerCallContext) -> pb.ListTasksResponse:
        raise UnsupportedOperationError("Listing tasks is not supported: chatplane's API lists a thread's runs.")

    # -- not supported --------------------------------------------------------------------------------------------

    async def on_create_task_push_notification_config(
        self, params: pb.TaskPushNotificationConfig, context: ServerCallContext
    ) -> pb.TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError()

    async def on_get_task_push_notification_config(
        self, params: pb.GetTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> pb.TaskPushNotificationConfig:
        raise PushNotificationNotSupportedError()

    async def on_list_task_push_notification_configs(
        self, params: pb.ListTaskPushNotificationConfigsRequest, context: ServerCallContext
    ) -> pb.ListTaskPushNotificationConfigsResponse:
        raise PushNotificationNotSupportedError()

    async def on_delete_task_push_notification_config(
        self, params: pb.DeleteTaskPushNotificationConfigRequest, context: ServerCallContext
    ) -> None:
        raise PushNotificationNotSupportedError()

    async def on_get_extended_agent_card(
        self, params: pb.GetExtendedAgentCardRequest, context: ServerCallContext
    ) -> pb.AgentCard:
        raise UnsupportedOperationError("There is no extended card: the agent card says it all.")


def _caller(context: ServerCallContext) -> Caller:
    caller = context.state.get("caller")
    if not isinstance(caller, Caller):  # the route always sets it; a handler reached otherwise refuses
        raise InvalidRequestError("Unauthenticated call.")
    return caller


def _text(message: pb.Message) -> str:
    texts = []
    for part in message.parts:
        kind = part.WhichOneof("content")
        if kind != "text":
            raise ContentTypeNotSupportedError(f"message.parts: only text parts are accepted, not {kind or 'empty'}.")
        texts.append(part.text)
    text = "\n".join(texts)
    if not text.strip():
        raise InvalidParamsError("message.parts: send at least one text part with some text.")
    return text


def _history_length(params: pb.SendMessageRequest) -> int | None:
    configuration = params.configuration
    return configuration.history_length if configuration.HasField("history_length") else None


@contextmanager
def _translated(where: str) -> Iterator[None]:
    """chatplane's errors as A2A errors (its message, never an exception's text)."""
    try:
        yield
    except A2AError:
        raise
    except Exception as exc:
        error = as_chatplane_error(exc, where) if not isinstance(exc, ChatplaneError) else exc
        raise _a2a_error(error) from None


def _a2a_error(error: ChatplaneError) -> A2AError:
    data = {"code": error.code}
    if error.status == 404:
        return InvalidParamsError(error.message, data)
    if error.status >= 500:
        return InternalError(error.message, data)
    if error.status in (409, 429):
        return InvalidRequestError(error.message, data)
    return InvalidParamsError(error.message, data)
