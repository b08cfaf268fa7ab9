"""The Redis event log, two instances standing for two processes, on the real Redis server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from chatplane.events import RunEvent
from chatplane.runs.events import EventLogUnavailable
from chatplane.runs.redis_log import RedisEventLog


@pytest.fixture
async def logs(redis_url: str) -> AsyncIterator[tuple[RedisEventLog, RedisEventLog]]:
    here, there = RedisEventLog(redis_url), RedisEventLog(redis_url)
    yield here, there
    await here.aclose()
    await there.aclose()


async def _follow(log: RedisEventLog, run_id: str, through_pauses: bool = False) -> list[RunEvent]:
    return [event async for event in log.subscribe(run_id, 0, through_pauses=through_pauses)]


def _calls_to_xread(log: RedisEventLog) -> list[str]:
    calls: list[str] = []
    xread = log._reader.xread

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append("xread")
        return await xread(*args, **kwargs)

    log._reader.xread = counted  # type: ignore[method-assign]
    return calls


async def test_a_run_started_here_is_followed_here_and_elsewhere_alike(logs) -> None:  # type: ignore[no-untyped-def]
    here, there = logs
    run_id = uuid.uuid4().hex
    here.open(run_id, here=True)
    xreads_here = _calls_to_xread(here)
    local = asyncio.create_task(_follow(here, run_id))
    remote = asyncio.create_task(_follow(there, run_id))
    await asyncio.sleep(0.1)
    for kind in ("run_started", "token", "message"):
        await here.append(run_id, kind, {"kind": kind})  # type: ignore[arg-type]
    await here.append(run_id, "run_completed", {"status": "succeeded"})
    followed_here, followed_there = await asyncio.wait_for(asyncio.gather(local, remote), 10)
    assert [(e.id, e.type) for e in followed_here] == [(e.id, e.type) for e in followed_there]
    assert [e.id for e in followed_here] == [1, 2, 3, 4]
    assert xreads_here == []  # read from memory: no blocking XREAD, no Redis connection held
    late = await _follow(here, run_id)  # after the end, still from memory
    assert [e.id for e in late] == [1, 2, 3, 4] and xreads_here == []


async def test_a_paused_run_resumed_elsewhere_is_followed_from_the_stream(logs) -> None:  # type: ignore[no-untyped-def]
    here, there = logs
    run_id = uuid.uuid4().hex
    here.open(run_id, here=True)
    await here.append(run_id, "run_started", {})
    await here.append(run_id, "interrupt", {"requests": []})
    assert [e.type for e in await _follow(here, run_id)] == ["run_started", "interrupt"]  # ends at the pause
    waiting = asyncio.create_task(_follow(here, run_id, through_pauses=True))
    await asyncio.sleep(0.1)
    await there.append(run_id, "run_resumed", {})  # approved through another process, which runs it on
    await there.append(run_id, "run_completed", {"status": "succeeded"})
    followed = await asyncio.wait_for(waiting, 10)
    assert [(e.id, e.type) for e in followed] == [
        (1, "run_started"),
        (2, "interrupt"),
        (3, "run_resumed"),
        (4, "run_completed"),
    ]
    assert [e.type for e in await _follow(here, run_id)][-1] == "run_completed"  # a late follower reads on


async def test_hundreds_of_followers_at_once(logs) -> None:  # type: ignore[no-untyped-def]
    """More followers of other processes' runs than a default Redis pool holds (100): none fails, none waits."""
    here, there = logs
    runs = [uuid.uuid4().hex for _ in range(150)]
    followers = [asyncio.create_task(_follow(here, run_id)) for run_id in runs]
    await asyncio.sleep(0.5)
    await asyncio.gather(*(there.append(run_id, "run_completed", {"status": "succeeded"}) for run_id in runs))
    followed = await asyncio.wait_for(asyncio.gather(*followers), 20)
    assert all([e.type for e in events] == ["run_completed"] for events in followed)
    assert here._available() and there._available()  # neither fell back to memory


async def test_an_event_is_one_trip_and_stored_as_it_was_returned(logs, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    """Each append is one script call: it numbers the event, stores the event's JSON (ids from 1, contiguous) and,
    for the run's last event only, sets the stream and its counter to expire. Redis forgetting the script (a
    restart, ``SCRIPT FLUSH``) costs a reload, not an event."""
    import redis.asyncio as aioredis

    here, _ = logs
    run_id = uuid.uuid4().hex
    key = f"chatplane:run:{run_id}"
    direct = aioredis.Redis.from_url(redis_url)
    try:
        sent: list[str] = []
        execute = here._redis.execute_command

        async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            sent.append(str(args[0]))
            return await execute(*args, **kwargs)

        here._redis.execute_command = counted  # type: ignore[method-assign]
        started = await here.append(run_id, "run_started", {"message": {"content": 'quotes " and ünïcode'}})
        assert sent == ["EVALSHA"] or sent == ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]
        assert await direct.ttl(key) == -1 and await direct.ttl(f"{key}:seq") == -1
        await direct.script_flush()
        token = await here.append(run_id, "token", {"text": "hi"})
        done = await here.append(run_id, "run_completed", {"status": "succeeded"})
        assert [started.id, token.id, done.id] == [1, 2, 3]
        stored = [RunEvent.model_validate_json(fields[b"e"]) for _, fields in await direct.xrange(key)]
        assert stored == [started, token, done]
        assert 0 < await direct.ttl(key) <= 3600 and 0 < await direct.ttl(f"{key}:seq") <= 3600
        assert here._available()
    finally:
        await direct.aclose()


async def test_a_redis_that_refuses_scripts_still_carries_every_event(redis_url: str, caplog) -> None:  # type: ignore[no-untyped-def]
    """A Redis user without scripting rights (an ACL without ``@scripting``): events take two trips each (``INCR``,
    then ``XADD``), numbered and stored as with the script, and followed from another process; one warning, which
    names the error's type only."""
    import logging

    import redis.asyncio as aioredis

    user = f"chatplane_noscript_{uuid.uuid4().hex[:8]}"
    admin = aioredis.Redis.from_url(redis_url)
    await admin.acl_setuser(
        user, enabled=True, nopass=True, keys=["*"], channels=["*"], commands=["+@all", "-@scripting"]
    )
    limited_url = redis_url.replace("redis://", f"redis://{user}@", 1)
    here, there = RedisEventLog(limited_url), RedisEventLog(redis_url)
    try:
        run_id = uuid.uuid4().hex
        remote = asyncio.create_task(_follow(there, run_id))
        await asyncio.sleep(0.1)
        with caplog.at_level(logging.WARNING, logger="chatplane.runs"):
            events = [
                await here.append(run_id, "run_started", {}),
                await here.append(run_id, "token", {"text": "hi"}),
                await here.append(run_id, "run_completed", {"status": "succeeded"}),
            ]
        assert [e.id for e in events] == [1, 2, 3]
        assert await asyncio.wait_for(remote, 10) == events
        refused = [r for r in caplog.records if "refused the event script" in r.getMessage()]
        assert len(refused) == 1 and "NoPermissionError" in refused[0].getMessage()
        assert "permission" not in refused[0].getMessage().lower().replace("nopermissionerror", "")
        assert here._available()
        key = f"chatplane:run:{run_id}"
        assert 0 < await admin.ttl(key) <= 3600 and 0 < await admin.ttl(f"{key}:seq") <= 3600
    finally:
        await here.aclose()
        await there.aclose()
        await admin.acl_deluser(user)
        await admin.aclose()


async def test_a_failing_redis_does_not_turn_the_script_off(logs, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    """An error answer that is Redis failing (a read-only replica after a failover, out of memory) is handled like
    an outage — the run's events stay in this process — and the script is used again once Redis is back; only a
    refusal of the script itself (no rights, no such command) switches to two trips."""
    import redis.asyncio as aioredis
    from redis.exceptions import ReadOnlyError

    here, _ = logs
    script = here._append

    async def read_only(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ReadOnlyError("You can't write against a read only replica.")

    run_id = uuid.uuid4().hex
    here.open(run_id, here=True)
    here._append = read_only
    await here.append(run_id, "run_started", {})
    await here.append(run_id, "run_completed", {"status": "succeeded"})
    assert not here._available() and here._scripts  # an outage, not a refusal
    assert [e.type for e in await asyncio.wait_for(_follow(here, run_id), 10)] == ["run_started", "run_completed"]

    here._append, here._down_until = script, 0.0  # Redis is back (the retry pause is over)
    later = uuid.uuid4().hex
    assert (await here.append(later, "run_started", {})).id == 1
    direct = aioredis.Redis.from_url(redis_url)
    try:
        assert len(await direct.xrange(f"chatplane:run:{later}")) == 1
    finally:
        await direct.aclose()
    assert here._available() and here._scripts


async def test_an_event_whose_json_does_not_start_with_its_id_takes_two_trips(logs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The script splices the id into the event's JSON after ``{"id":``; should the JSON ever start otherwise, the
    event takes the two-trip path and is stored intact."""
    from chatplane.runs import redis_log

    here, there = logs
    monkeypatch.setattr(redis_log, "_UNNUMBERED", '{"not-the-id":')
    run_id = uuid.uuid4().hex
    remote = asyncio.create_task(_follow(there, run_id))
    await asyncio.sleep(0.1)
    events = [await here.append(run_id, "run_started", {}), await here.append(run_id, "run_completed", {})]
    assert await asyncio.wait_for(remote, 10) == events and [e.id for e in events] == [1, 2]


async def test_a_follower_elsewhere_hears_an_outcome_that_was_never_logged(logs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The run's process died between recording its outcome and logging it: after a silence the follower asks the
    run's record (``silence``), and ends with what it says."""
    monkeypatch.setattr("chatplane.runs.redis_log._BLOCK_MS", 100)
    here, there = logs
    run_id = uuid.uuid4().hex
    here.open(run_id, here=True)
    await here.append(run_id, "run_started", {})
    asked: list[str] = []

    async def silence() -> RunEvent | None:
        asked.append("asked")
        if len(asked) < 3:
            return None  # still under way: keep waiting
        return RunEvent(id=0, type="run_completed", run_id=run_id, data={"status": "succeeded"})

    events = [e async for e in there.subscribe(run_id, 0, silence=silence)]
    assert [(e.id, e.type) for e in events] == [(1, "run_started"), (0, "run_completed")]
    assert len(asked) == 3


async def test_a_follower_elsewhere_gives_way_to_the_record_when_redis_fails(logs) -> None:  # type: ignore[no-untyped-def]
    """A read failing mid-run raises EventLogUnavailable (the follower reads the record): the in-process log never
    sees a run that executes in another process, so it is no fallback for one."""
    here, there = logs
    run_id = uuid.uuid4().hex
    here.open(run_id, here=True)
    await here.append(run_id, "run_started", {})

    async def fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("Redis went away")

    seen: list[int] = []
    follower = there.subscribe(run_id, 0)
    seen.append((await anext(follower)).id)
    there._reader.xread = fails  # type: ignore[method-assign]
    with pytest.raises(EventLogUnavailable):
        await anext(follower)
    assert seen == [1]
    with pytest.raises(EventLogUnavailable):  # while Redis counts as down, at once
        await anext(there.subscribe(run_id, 0))
