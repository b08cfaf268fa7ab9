"""``chatplane chat``, driven through a pseudo-terminal as a person would use it: in-process and against a server,
the /commands, and the ``threads`` commands on the sessions it leaves in local storage."""

from __future__ import annotations

import httpx
import pexpect

from tests.cli.helpers import spawn as _spawn


def test_chat_in_process_streams_and_keeps_history(tmp_path) -> None:
    child = _spawn(
        ["chat", "--model", "fake:echo?token_delay=0.01", "--storage", "memory://", "--session", "t1"],
        tmp_path,
    )
    child.expect("session t1")
    child.expect("you ›")
    child.sendline("hello from the terminal")
    child.expect("echo: hello from the terminal")
    child.expect("you ›")
    child.sendline("/history")
    child.expect("hello from the terminal")
    child.expect("you ›")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_chat_against_a_server(server_factory, tmp_path) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    child = _spawn(["chat", "--url", server.url], tmp_path)
    child.expect("you ›")
    child.sendline("over http")
    child.expect("echo: over http")
    child.expect("you ›")
    child.sendline("/reset")
    child.expect("session cleared")
    child.expect("you ›")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_chat_against_a_server_with_an_unknown_thread(server_factory, tmp_path) -> None:
    server = server_factory({"CHATPLANE_MODEL": "fake:echo", "CHATPLANE_STORAGE_URL": "memory://"})
    child = _spawn(["chat", "--url", server.url, "--session", "no-such-thread"], tmp_path)
    child.expect("No such thread")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def test_chat_reports_model_errors_without_a_traceback(tmp_path) -> None:
    child = _spawn(["chat", "--model", "fake:echo?fail=error", "--storage", "memory://"], tmp_path)
    child.expect("you ›")
    child.sendline("hi")
    child.expect("failed to answer")
    child.expect("you ›")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    assert "Traceback" not in (child.before or "")


def test_chat_with_a_misconfigured_model_exits_cleanly(tmp_path) -> None:
    child = _spawn(["chat", "--model", "openai:gpt-4o"], tmp_path)
    child.expect("OPENAI_API_KEY")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def test_chat_switches_agent_lists_threads_and_reopens_one(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path}/cli.db"
    child = _spawn(
        ["chat", "--model", "fake:echo?token_delay=0.01", "--storage", storage, "--session", "first"], tmp_path
    )
    child.expect("you ›")
    child.sendline("in the first session")
    child.expect("echo: in the first session")
    child.expect("you ›")
    child.sendline("/agent react")
    child.expect("with the react agent")
    child.expect("you ›")
    child.sendline("a react question")
    child.expect("echo: a react question")
    child.expect("you ›")
    child.sendline("/threads")
    child.expect("react")  # newest first: the react session, then "first"
    child.expect("first")
    child.expect("you ›")
    child.sendline("/open first")
    child.expect(r"session first \(chat\)")
    child.expect("you ›")
    child.sendline("/history")
    child.expect("in the first session")
    child.expect("you ›")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    listing = _spawn(["threads", "list", "--storage", storage], tmp_path)
    listing.expect("first")
    listing.expect(pexpect.EOF)
    shown = _spawn(["threads", "show", "first", "--storage", storage], tmp_path)
    shown.expect("echo: in the first session")
    shown.expect(pexpect.EOF)
    deleted = _spawn(["threads", "delete", "first", "--storage", storage], tmp_path)
    deleted.expect("Deleted first")
    deleted.expect(pexpect.EOF)
    missing = _spawn(["threads", "show", "first", "--storage", storage], tmp_path)
    missing.expect("No such thread")
    missing.expect(pexpect.EOF)
    missing.close()
    assert missing.exitstatus == 1


SLOW_ANSWER = " ".join(f"word{i}" for i in range(200))


def test_ctrl_c_against_a_server_cancels_the_run_there(server_factory, tmp_path) -> None:
    """The interrupted run is cancelled on the server (its partial answer kept), so the next message is answered
    at once instead of waiting behind it."""
    server = server_factory(
        {"CHATPLANE_MODEL": f"fake:{SLOW_ANSWER}?token_delay=0.1", "CHATPLANE_STORAGE_URL": "memory://"}
    )
    child = _spawn(["chat", "--url", server.url], tmp_path)
    child.expect(r"session\s+(\S+) \(")
    thread_id = child.match.group(1)
    child.expect("you ›")
    child.sendline("go")
    child.expect("word3")
    child.sendintr()
    child.expect("interrupted")
    child.expect("you ›")
    runs = httpx.get(f"{server.url}/v1/threads/{thread_id}/runs").json()
    assert [run["status"] for run in runs] == ["cancelled"]
    messages = httpx.get(f"{server.url}/v1/threads/{thread_id}/messages").json()["messages"]
    assert messages[-1]["status"] == "cancelled" and SLOW_ANSWER.startswith(messages[-1]["content"])
    child.sendline("again")
    child.expect("word5")  # not queued behind the first answer
    child.sendintr()
    child.expect("you ›")
    child.sendline("/quit")
    child.expect(pexpect.EOF)


def test_history_renders_tool_calls_and_markdown(server_factory, tmp_path) -> None:
    server = server_factory(
        {
            "CHATPLANE_MODEL": 'fake:tool:calculator:{"expression":"2*21"}|It is **42**, see `calc`.',
            "CHATPLANE_STORAGE_URL": "memory://",
        }
    )
    child = _spawn(["chat", "--url", server.url, "--agent", "react"], tmp_path)
    child.expect("you ›")
    child.sendline("what is 2*21?")
    child.expect("It is")
    child.expect("you ›")
    child.sendline("/history")
    child.expect("you › what is 2\\*21\\?")
    child.expect('→ calculator\\(expression="2\\*21"\\)')
    child.expect("← calculator: 42")
    child.expect("agent ›")
    child.expect("It is 42, see calc.")
    child.expect("you ›")
    assert "**" not in (child.before or "")
    child.sendline("/quit")
    child.expect(pexpect.EOF)


RETRIED_MODEL = "fake:first attempt words here|the real answer is this?fail=drop"


def _retried_answer(child: pexpect.spawn) -> str:  # type: ignore[type-arg]
    child.expect("you ›")
    child.sendline("hi")
    child.expect(r"\(the model was tried again; its answer:\)")
    child.expect("you ›")
    shown = str(child.before)
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    return shown


def test_a_retried_model_attempt_starts_the_answer_over(tmp_path) -> None:
    child = _spawn(["chat", "--model", RETRIED_MODEL, "--storage", "memory://"], tmp_path)
    shown = _retried_answer(child)
    assert "the real answer is this" in shown and "first" not in shown


def test_a_retried_model_attempt_starts_the_answer_over_against_a_server(server_factory, tmp_path) -> None:
    server = server_factory({"CHATPLANE_MODEL": RETRIED_MODEL, "CHATPLANE_STORAGE_URL": "memory://"})
    shown = _retried_answer(_spawn(["chat", "--url", server.url], tmp_path))
    assert "the real answer is this" in shown and "first" not in shown
