"""chatplane's runs as A2A tasks: a run is a task (its id the run's), a thread is a context (its id the thread's).

A run's status is the task's state (``pending`` → submitted, ``running`` → working, ``waiting`` → input-required,
``succeeded`` → completed, ``failed`` → failed, ``cancelled`` → canceled); the assistant's answer is the task's
artifact ``answer`` and the text of its final status message; a failure's status message is chatplane's error
message (never an exception's text). A run's events become the stream's events (``TaskStream``): tokens are
chunks of the ``answer`` artifact, a retracted model attempt replaces it (``append: false``), and the stream ends
with the task's last status.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from a2a.types import a2a_pb2 as pb
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from chatplane.events import RunEvent
from chatplane.storage.runs import Run

ANSWER_ARTIFACT = "answer"

STATES: dict[str, pb.TaskState] = {
    "pending": pb.TASK_STATE_SUBMITTED,
    "running": pb.TASK_STATE_WORKING,
    "waiting": pb.TASK_STATE_INPUT_REQUIRED,
    "succeeded": pb.TASK_STATE_COMPLETED,
    "failed": pb.TASK_STATE_FAILED,
    "cancelled": pb.TASK_STATE_CANCELED,
}
_END_STATES: dict[str, pb.TaskState] = {
    "run_completed": pb.TASK_STATE_COMPLETED,
    "run_failed": pb.TASK_STATE_FAILED,
    "run_cancelled": pb.TASK_STATE_CANCELED,
    "interrupt": pb.TASK_STATE_INPUT_REQUIRED,
}


def agent_message(run: Run, text: str) -> pb.Message:
    return pb.Message(
        message_id=str(uuid.uuid4()),
        context_id=run.thread_id,
        task_id=run.run_id,
        role=pb.ROLE_AGENT,
        parts=[pb.Part(text=text)],
    )


def user_message(run: Run) -> pb.Message | None:
    text = run.input.get("message")
    if not isinstance(text, str):
        return None
    return pb.Message(
        message_id=f"{run.run_id}-input",
        context_id=run.thread_id,
        task_id=run.run_id,
        role=pb.ROLE_USER,
        parts=[pb.Part(text=text)],
    )


def answer_artifact(text: str) -> pb.Artifact:
    return pb.Artifact(artifact_id=ANSWER_ARTIFACT, name=ANSWER_ARTIFACT, parts=[pb.Part(text=text)])


def _metadata(run: Run) -> Struct:
    return ParseDict({"chatplane_run_id": run.run_id, "chatplane_thread_id": run.thread_id}, Struct())


def task_of(
    run: Run,
    *,
    answer: str | None = None,
    failure: str | None = None,
    state: pb.TaskState | None = None,
    history_length: int | None = None,
) -> pb.Task:
    """The task ``run`` is: its state (``state`` overrides the record's, for a run that ended since it was read),
    its answer (an artifact, and the final status message), the user's message as its history."""
    status = pb.TaskStatus(state=state if state is not None else STATES[run.status])
    status.timestamp.FromSeconds(int(run.finished_at or run.started_at or run.created_at))
    if failure is not None:
        status.message.CopyFrom(agent_message(run, failure))
    elif answer:
        status.message.CopyFrom(agent_message(run, answer))
    history = [m for m in (user_message(run),) if m is not None]
    if answer:
        history.append(status.message)
    if history_length is not None:
        history = history[-history_length:] if history_length else []
    return pb.Task(
        id=run.run_id,
        context_id=run.thread_id,
        status=status,
        artifacts=[answer_artifact(answer)] if answer else [],
        history=history,
        metadata=_metadata(run),
    )


def failure_text(event: RunEvent) -> str | None:
    """What a failed or cancelled run's last event says (chatplane's message); None for other events."""
    if event.type == "run_failed":
        error = event.data.get("error") or {}
        return f"{error.get('code', 'error')}: {error.get('message', 'The run failed.')}"
    if event.type == "run_cancelled":
        return "The task was canceled."
    if event.type == "interrupt":
        return "The agent waits for a human decision; chatplane's API can resume it (POST /v1/runs/{id}/resume)."
    return None


def final_answer(event: RunEvent) -> str | None:
    """The text of a complete assistant answer (no tool calls), if ``event`` is one."""
    if event.type != "message":
        return None
    message: dict[str, Any] = event.data["message"]
    if message["role"] == "assistant" and not message["tool_calls"] and message["content"]:
        return str(message["content"])
    return None


class TaskStream:
    """A run's events as A2A stream events, for one task."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.answer = ""
        self._streamed: set[str | None] = set()

    def _artifact(self, text: str, *, append: bool, last: bool = False) -> pb.TaskArtifactUpdateEvent:
        return pb.TaskArtifactUpdateEvent(
            task_id=self.run.run_id,
            context_id=self.run.thread_id,
            artifact=answer_artifact(text),
            append=append,
            last_chunk=last,
        )

    def _status(self, state: pb.TaskState, text: str | None = None) -> pb.TaskStatusUpdateEvent:
        status = pb.TaskStatus(state=state)
        status.timestamp.GetCurrentTime()
        if text:
            status.message.CopyFrom(agent_message(self.run, text))
        return pb.TaskStatusUpdateEvent(task_id=self.run.run_id, context_id=self.run.thread_id, status=status)

    async def events(
        self, run_events: AsyncIterator[RunEvent]
    ) -> AsyncIterator[pb.TaskStatusUpdateEvent | pb.TaskArtifactUpdateEvent]:
        async for event in run_events:
            if event.type == "run_started":
                yield self._status(pb.TASK_STATE_WORKING)
            elif event.type == "token" and event.data.get("text"):
                text = event.data["text"]
                self._streamed.add(event.data.get("message_id"))
                yield self._artifact(text, append=bool(self.answer))
                self.answer += text
            elif event.type == "retract":
                self.answer = ""
                yield self._artifact("", append=False)  # the attempt's text is void: the retry's follows
            elif (answer := final_answer(event)) is not None:
                if event.data["message"].get("id") not in self._streamed or answer != self.answer:
                    yield self._artifact(answer, append=False)  # a model that did not stream, or a later answer
                self.answer = answer
            elif event.type in _END_STATES:
                if event.type == "run_completed":
                    yield self._artifact(self.answer, append=False, last=True)
                    yield self._status(pb.TASK_STATE_COMPLETED, self.answer)
                else:
                    yield self._status(_END_STATES[event.type], failure_text(event))
                return
