"""``search_docs``: find the passages of a local folder of ``.txt`` / ``.md`` documents that best match a query.

Scoring is plain term overlap (distinct query words present, then total occurrences; a plural matches its singular),
which is enough for a folder of notes and needs no index. Passages are consecutive paragraphs packed up to
``SNIPPET_CHARS``, so a heading or a lead-in ("Three agent kinds:") stays with the list it introduces.

Safety: only regular files whose real path lies inside the folder are read (a symlink pointing elsewhere is
skipped), each at most ``MAX_FILE_BYTES``, at most ``MAX_FILES`` of them, and all file reading happens in a worker
thread so the event loop never waits on the disk.

Out of the box (``CHATPLANE_DOCS_DIR`` unset and no ``./data/docs``) it searches a few short documents about
chatplane itself that ship with it (``SAMPLE_DOCS``), so a question about documents works offline at once.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from langchain_core.tools import BaseTool, ToolException, tool

SAMPLE_DOCS = Path(__file__).with_name("sample_docs")
"""What chatplane is, its API, its agents and tools: searched when no folder of documents is configured."""
DEFAULT_DOCS = Path("data/docs")
"""The folder searched, when it exists, if ``CHATPLANE_DOCS_DIR`` is unset (relative to the working directory)."""
SUFFIXES = (".txt", ".md")
MAX_FILES = 2000
MAX_FILE_BYTES = 1_000_000
MAX_RESULTS = 5
SNIPPET_CHARS = 600
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an and are as at be by do does for from how i in is it of on or the this to what when where which who why "
    "with about can you me my".split()
)


@dataclass(frozen=True)
class Hit:
    file: str
    snippet: str
    score: tuple[int, int]


def terms(text: str) -> list[str]:
    """The words of ``text`` worth matching: lower-cased, without stop words and single letters."""
    return [w for w in (m.group().lower() for m in _WORD.finditer(text)) if len(w) > 1 and w not in _STOPWORDS]


def document_files(root: Path) -> list[Path]:
    """The documents under ``root``: regular .txt/.md files whose resolved path stays inside ``root``."""
    files: list[Path] = []
    for path in sorted(root.rglob("*")):
        if len(files) >= MAX_FILES:
            break
        if path.suffix.lower() not in SUFFIXES:
            continue
        real = path.resolve()
        if not real.is_relative_to(root) or not real.is_file():
            continue  # a symlink (or a symlinked folder) that leads out of the folder
        if real.stat().st_size > MAX_FILE_BYTES:
            continue
        files.append(path)
    return files


def match_form(word: str) -> str:
    """``word`` as matched: a plural as its singular ("agents" finds "agent")."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def passages(text: str) -> list[str]:
    """Consecutive paragraphs packed up to about ``SNIPPET_CHARS``; a longer one cut into windows of that size."""
    out: list[str] = []
    current = ""
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if current and len(current) + 1 + len(paragraph) <= SNIPPET_CHARS:
            current = f"{current}\n{paragraph}"
            continue
        if current:
            out.append(current)
        while len(paragraph) > SNIPPET_CHARS:
            out.append(paragraph[:SNIPPET_CHARS])
            paragraph = paragraph[SNIPPET_CHARS:]
        current = paragraph
    if current:
        out.append(current)
    return out


def search(folder: Path, query: str, max_results: int = 3) -> list[Hit]:
    """Blocking: the best passages for ``query`` in the documents under ``folder`` (best first)."""
    root = folder.expanduser().resolve()
    if not root.is_dir():
        raise ToolException("There is no document folder to search (it does not exist yet).")
    wanted = {match_form(w) for w in terms(query)}
    if not wanted:
        return []
    hits: list[Hit] = []
    for path in document_files(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        for passage in passages(text):
            words = [match_form(w) for w in terms(passage)]
            present = wanted.intersection(words)
            if present:
                occurrences = sum(1 for w in words if w in wanted)
                hits.append(Hit(path.relative_to(root).as_posix(), passage, (len(present), occurrences)))
    hits.sort(key=lambda h: h.score, reverse=True)
    return hits[:max_results]


def default_folder() -> Path:
    """Blocking: ``./data/docs`` if it exists, else the sample documents."""
    return DEFAULT_DOCS if DEFAULT_DOCS.is_dir() else SAMPLE_DOCS


def make_search_docs(docs_dir: str | Path | None) -> BaseTool:
    """The ``search_docs`` tool over ``docs_dir`` (read at each call, so new documents are found at once);
    None (or empty): ``default_folder()``, chosen at each call too."""
    configured = Path(docs_dir) if docs_dir else None

    def find(query: str, limit: int) -> list[Hit]:
        return search(configured or default_folder(), query, limit)

    @tool("search_docs")
    async def search_docs(query: str, max_results: int = 3) -> str:
        """Search the local documents for passages about `query`; returns the best passages with their file names."""
        limit = max(1, min(max_results, MAX_RESULTS))
        hits = await asyncio.to_thread(find, query, limit)
        if not hits:
            return f"No document matches {query[:80]!r}."
        return "\n\n".join(f"[{hit.file}]\n{hit.snippet}" for hit in hits)

    if configured is None:
        # Say what the default documents cover: told only "the local documents", a small model answers questions
        # about chatplane from its own (wrong) knowledge; told this, Qwen2.5-Coder-1.5B routed 6 of 8 right.
        search_docs.description = (
            "Search chatplane's documentation (its API, agents, tools, settings, deployment): for any question about "
            "chatplane. Returns the best passages with their file names."
        )
    return search_docs
