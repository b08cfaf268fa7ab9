"""Memory recall's cost in a turn, in instructions: the same chat turns (``benchmarks.store``'s recall turns: the
mock model in its own process, SQLite, the user holding 100 memories) under callgrind, with memory off and with
recall on, each in a fresh process.

    python -m benchmarks.recall_instructions                       # off, endpoint, local; 20 turns each
    python -m benchmarks.recall_instructions --src /tmp/old --src .  # before and after

CPU time per turn on this shared machine moved by ±50% from run to run (``benchmarks.store``'s recall table);
instructions do not (``benchmarks.callgrind``). Counted: every instruction of the process running the turns, all its
threads, from the first measured turn to the last (start-up, the memories' puts and five warm-up turns are not).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from benchmarks import report
from benchmarks.callgrind import read_totals

EMBEDDINGS = {"off": "none", "endpoint": "openai:mock", "local": "local:e5-small"}


async def _control(switch: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "callgrind_control", f"--instr={switch}", str(os.getpid()), stdout=asyncio.subprocess.DEVNULL
    )
    await proc.wait()


async def _turns(mode: str, turns: int) -> None:
    """In the process under callgrind: memories, an assistant, warm-up, then ``turns`` counted turns."""
    from benchmarks.mock_openai import MockOpenAIServer
    from chatplane.agent import ProductionAgent
    from chatplane.config import Settings

    folder = tempfile.mkdtemp()
    with MockOpenAIServer(own_process=True, ttft=0, token_interval=0, tokens=20) as mock:
        settings = Settings(
            _env_file=None,
            model="openai:gpt-mock",
            openai_base_url=mock.base_url,
            openai_api_key="x",
            storage_url=f"sqlite:///{folder}/recall.db",
            embeddings=EMBEDDINGS[mode],
            embeddings_base_url=mock.base_url,
        )
        async with ProductionAgent(settings=settings) as agent:
            user = agent.for_user("bench")
            for i in range(100):
                await user.memories.put(("memories",), f"m{i}", {"content": f"The user said fact {i} about their day."})
            # an assistant of its own either way: the same lookups with memory off as on
            assistant = (await user.assistants.create("chat", context={"memory": mode != "off"})).assistant_id
            for i in range(5):
                await agent.achat("bench", f"hello {i}", session_id=f"warm{i}", agent=assistant)
            await _control("on")
            for i in range(turns):
                await agent.achat("bench", f"what did I say about my day? {i}", session_id=f"s{i}", agent=assistant)
            await _control("off")


def _count(source: Path, mode: str, turns: int) -> float:
    """Instructions per turn of ``mode`` with the code of ``source``."""
    import subprocess

    out = Path(tempfile.mkdtemp()) / "callgrind.out"
    here = Path(__file__).resolve().parent.parent  # this tree's benchmarks, ``source``'s chatplane
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": f"{source / 'src'}:{here}"}
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    command += [sys.executable, "-m", "benchmarks.recall_instructions", "--child", mode, "--turns", str(turns)]
    subprocess.run(command, cwd=here, env=env, check=True, capture_output=True)
    return read_totals(out) / turns


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", action="append", type=Path, help="a source tree (default: this one)")
    parser.add_argument("--modes", nargs="+", default=list(EMBEDDINGS), choices=list(EMBEDDINGS))
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--child", choices=list(EMBEDDINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_turns(args.child, args.turns))
        return
    rows = []
    for source in args.src or [Path(__file__).resolve().parent.parent]:
        counts = {mode: _count(source.resolve(), mode, args.turns) for mode in args.modes}
        base = counts.get("off")
        for mode, count in counts.items():
            share = f"{(count - base) / base * 100:+.0f}%" if base else ""
            rows.append([str(source), mode, f"{count / 1e6:.2f} M", share])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(report.table(["source", "assistant", "instructions / turn", "vs memory off"], rows))


if __name__ == "__main__":
    main()
