"""The Python SDK on a team's own graphs (``tests/projects/demo``), against a real server: run inputs, stream modes,
interrupts and resume, thread state, assistants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatplane.client import (
    AsyncClient,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RunCommand,
    RunEvent,
)
from tests.servers import wait_for

pytestmark = pytest.mark.e2e
DEMO = str(Path(__file__).parent.parent / "projects" / "demo" / "chatplane.json")


@pytest.fixture
def server(server_factory: Any, tmp_path: Path) -> Any:
    storage = f"sqlite:///{tmp_path / 'graphs.db'}"
    env = {"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": storage, "CHATPLANE_CONFIG_FILE": DEMO}
    return server_factory(env)


def _custom(events: list[RunEvent]) -> list[Any]:
    return [e.data for e in events if e.type == "custom"]


def test_agents_list_graphs_with_their_schemas_and_the_project_s_tools(server: Any) -> None:
    with Client(server.url) as client:
        listed = client.agents()
    assert "lookup_order" in listed.tools
    counter = next(a for a in listed.agents if a.name == "counter")
    assert counter.kind == "graph" and not counter.messages and counter.graph_id == "counter"
    assert counter.input_schema is not None and set(counter.input_schema["properties"]) == {"count", "log"}
    assert counter.context_schema is not None and set(counter.context_schema["properties"]) == {"step", "label"}
    helpdesk = next(a for a in listed.agents if a.name == "helpdesk")
    assert helpdesk.kind == "agent" and helpdesk.messages


def test_runs_take_input_context_config_and_stream_modes(server: Any) -> None:
    with Client(server.url) as client:
        tid = client.create_thread(agent="counter").thread_id
        run = client.run(tid, input={"count": 10}, context={"step": 5, "label": "five"})
        assert run.status == "succeeded" and run.output is None
        assert run.values == {"count": 15, "log": ["five"]}

        events = list(client.stream(tid, input={}, stream_mode="custom", config={"tags": ["sdk"]}))
        assert _custom(events) == [{"namespace": [], "data": {"adding": 1}}]
        assert events[-1].type == "run_completed"
        both = list(client.stream(tid, input={}, stream_mode=["values", "updates"]))
        assert {"values", "updates"} <= {e.type for e in both}
        assert [e.data["data"] for e in both if e.type == "values"][-1]["count"] == 17

        state = client.thread_state(tid)
        assert state.values == {"count": 17, "log": ["five", "tick", "tick"]} and state.next == []
        assert [r.status for r in client.list_runs(tid)] == ["succeeded"] * 3

        with pytest.raises(InvalidRequestError) as refused:
            client.run(tid, "hi")  # this graph has no messages
        assert "`message`" in refused.value.message
        with pytest.raises(InvalidRequestError) as reserved:
            client.run(tid, input={}, config={"configurable": {"thread_id": "other"}})
        assert "`config.configurable.thread_id`" in reserved.value.message
        with pytest.raises(InvalidRequestError):
            client.run(tid)  # none of message, input, command
        with pytest.raises(TypeError, match="inputs"):
            client.run(tid, inputs={})  # type: ignore[call-arg]
        with pytest.raises(ConflictError) as no_messages:
            client.messages(tid)
        assert no_messages.value.code == "no_messages"

        greeter = client.create_thread(agent="greeter").thread_id
        configured = client.run(greeter, "bob", config={"configurable": {"greeting": "good day"}})
        assert configured.output is not None and configured.output.content == "good day, bob"


def test_an_interrupt_is_answered_with_resume_or_a_command(server: Any) -> None:
    with Client(server.url) as client:
        tid = client.create_thread(agent="approval").thread_id
        events = list(client.stream(tid, input={"request": "refund"}, stream_mode=["updates"], stream_subgraphs=True))
        paused = events[-1]
        assert paused.type == "interrupt" and paused.data["requests"][0]["value"] == {"question": "approve refund?"}
        assert any(e.type == "updates" and e.data["namespace"] for e in events)  # the subgraph's own parts
        assert client.get_run(paused.run_id).status == "waiting"
        waiting = client.thread_state(tid)
        assert waiting.interrupts and waiting.next

        with pytest.raises(TypeError):
            client.resume(paused.run_id)  # neither decisions nor a value
        assert client.resume(paused.run_id, value="yes").run_id == paused.run_id
        rest = list(client.attach(paused.run_id, after=paused.id))
        assert rest[0].type == "run_resumed" and rest[-1].type == "run_completed"
        assert client.thread_state(tid).values == {"request": "refund", "decision": "yes", "done": True}
        with pytest.raises(ConflictError) as not_waiting:
            client.resume(paused.run_id, value="again")
        assert not_waiting.value.code == "run_state_conflict"

        # A command that resumes goes to the waiting run: its stream replays the run, past the old pause, to its end.
        started = client.start_run(tid, input={"request": "swap"})
        wait_for(lambda: client.get_run(started.run_id).status == "waiting", timeout=30)
        resumed = list(client.stream(tid, command=RunCommand(resume="no")))
        assert {e.run_id for e in resumed} == {started.run_id}
        assert [e.type for e in resumed] == ["run_resumed", "run_completed"]  # from the resume on
        assert client.thread_state(tid).values["decision"] == "no"


def test_assistants_are_created_versioned_pinned_searched_and_deleted(server: Any) -> None:
    with Client(server.url) as client:
        default = client.get_assistant("counter")
        assert default.default and default.graph_id == "counter"
        mine = client.create_assistant(
            "counter", assistant_id="by-three", name="By three", context={"step": 3}, metadata={"team": "a"}
        )
        assert (mine.assistant_id, mine.version, mine.context) == ("by-three", 1, {"step": 3})
        with pytest.raises(ConflictError) as exists:
            client.create_assistant("counter", assistant_id="by-three")
        assert exists.value.code == "assistant_exists"
        assert client.create_assistant("counter", assistant_id="by-three", if_exists="do_nothing").version == 1

        tid = client.create_thread(agent="by-three").thread_id
        assert client.run(tid, input={"count": 0}).values == {"count": 3, "log": ["tick"]}

        updated = client.update_assistant("by-three", context={"step": 4}, metadata={"reviewed": True})
        assert updated.version == 2 and updated.metadata == {"team": "a", "reviewed": True}
        assert [v.version for v in client.assistant_versions("by-three")] == [2, 1]
        assert client.set_assistant_version("by-three", 1).context == {"step": 3}
        assert client.get_assistant("by-three").version == 1

        assert [a.assistant_id for a in client.search_assistants(metadata={"team": "a"})] == ["by-three"]
        assert [a.assistant_id for a in client.search_assistants(graph_id="counter", name="three")] == ["by-three"]
        listed = client.list_assistants(graph_id="counter")
        assert [a.assistant_id for a in listed] == [default.assistant_id, "by-three"]  # the default first
        with pytest.raises(ConflictError) as read_only:
            client.update_assistant("counter", name="mine now")
        assert read_only.value.code == "assistant_read_only"
        with pytest.raises(InvalidRequestError):
            client.create_assistant("helpdesk", context={"tools": ["nope"]})

        client.delete_assistant("by-three")
        with pytest.raises(NotFoundError) as gone:
            client.get_assistant("by-three")
        assert gone.value.code == "assistant_not_found"


async def test_the_async_client_covers_the_same_ground(server: Any) -> None:
    async with AsyncClient(server.url) as client:
        assert "counter" in [a.name for a in (await client.agents()).agents]
        assistant = await client.create_assistant("counter", context={"step": 2}, metadata={"k": "v"})
        assert (await client.update_assistant(assistant.assistant_id, name="two")).version == 2
        assert [v.version for v in await client.assistant_versions(assistant.assistant_id)] == [2, 1]
        assert (await client.set_assistant_version(assistant.assistant_id, 1)).name == "counter"
        assert [a.assistant_id for a in await client.search_assistants(metadata={"k": "v"})] == [assistant.assistant_id]
        assert assistant.assistant_id in [a.assistant_id for a in await client.list_assistants()]

        tid = (await client.create_thread(agent=assistant.assistant_id)).thread_id
        run = await client.run(tid, input={"count": 1}, context={"label": "two"})
        assert run.values == {"count": 3, "log": ["two"]}
        events = [e async for e in client.stream(tid, input={}, stream_mode=["custom"])]
        assert _custom(events) == [{"namespace": [], "data": {"adding": 2}}]
        assert (await client.thread_state(tid)).values["count"] == 5
        assert len(await client.list_runs(tid)) == 2
        await client.delete_assistant(assistant.assistant_id)
        with pytest.raises(NotFoundError):
            await client.get_assistant(assistant.assistant_id)

        approval = (await client.create_thread(agent="approval")).thread_id
        paused = [e async for e in client.stream(approval, input={"request": "refund"})][-1]
        assert paused.type == "interrupt"
        await client.resume(paused.run_id, value="ok")
        rest = [e async for e in client.attach(paused.run_id, after=paused.id)]
        assert rest[-1].type == "run_completed"
        assert (await client.thread_state(approval)).values["decision"] == "ok"
