"""search_docs: best matching passages of a local folder, never anything outside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.tools import ToolException

from chatplane.tools.docs import make_search_docs, passages, terms


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "policies").mkdir(parents=True)
    (folder / "policies" / "refunds.md").write_text(
        "# Refunds\n\nCustomers may ask for a refund within 30 days of purchase.\n\nShipping costs are not refunded.\n",
        encoding="utf-8",
    )
    (folder / "shipping.txt").write_text("Orders ship within two days. Shipping is free above 50 euros.\n")
    (folder / "notes.pdf").write_bytes(b"%PDF refund refund refund")
    return folder


async def test_finds_the_best_passages_with_file_names(docs: Path) -> None:
    answer = await make_search_docs(docs).ainvoke({"query": "How many days for a refund?"})
    first = answer.split("\n\n")[0]
    assert first.startswith("[policies/refunds.md]")
    assert "within 30 days" in answer
    assert "notes.pdf" not in answer  # only .txt and .md are read


async def test_ranks_by_overlap_and_limits_results(docs: Path) -> None:
    answer = await make_search_docs(docs).ainvoke({"query": "shipping free", "max_results": 1})
    assert answer == "[shipping.txt]\nOrders ship within two days. Shipping is free above 50 euros."


async def test_no_match(docs: Path) -> None:
    assert await make_search_docs(docs).ainvoke({"query": "quantum chromodynamics"}) == (
        "No document matches 'quantum chromodynamics'."
    )


async def test_missing_folder_is_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ToolException, match="no document folder"):
        await make_search_docs(tmp_path / "nowhere").ainvoke({"query": "refund"})


async def test_never_reads_outside_the_folder(docs: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("The launch password is swordfish.\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "more.md").write_text("swordfish again\n")
    (docs / "link.md").symlink_to(secret)
    (docs / "linked-folder").symlink_to(outside, target_is_directory=True)
    (docs / "inside.md").write_text("A swordfish is a fish.\n")
    answer = await make_search_docs(docs).ainvoke({"query": "swordfish password"})
    assert answer == "[inside.md]\nA swordfish is a fish."  # the linked files match better, but are not read


async def test_a_heading_and_a_lead_in_stay_with_their_list_and_plurals_match(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "kinds.md").write_text("# Our kinds\n\nThree kinds:\n\n- `a` — first.\n- `b` — second.\n\n" + "x " * 400)
    answer = await make_search_docs(folder).ainvoke({"query": "Which kinds are there?"})
    assert answer == "[kinds.md]\n# Our kinds\nThree kinds:\n- `a` — first. - `b` — second."
    assert passages("one\n\n" + "y" * 700) == ["one", "y" * 600, "y" * 100]  # long paragraphs cut in windows
    assert (await make_search_docs(folder).ainvoke({"query": "kind"})).startswith("[kinds.md]\n# Our kinds")


def test_terms_drop_stop_words_and_punctuation() -> None:
    assert terms("What is the refund policy, for orders?") == ["refund", "policy", "orders"]


async def test_out_of_the_box_it_searches_the_documents_that_ship_with_chatplane(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./data/docs here
    answer = await make_search_docs(None).ainvoke({"query": "supervisor specialists multi agent"})
    assert answer.startswith("[agents.md]") and "supervisor hands each request to specialists" in answer
    answer = await make_search_docs("").ainvoke({"query": "re-attach Last-Event-ID"})
    assert answer.startswith("[api.md]")
    (tmp_path / "data" / "docs").mkdir(parents=True)  # a folder of one's own, found at the next call
    (tmp_path / "data" / "docs" / "mine.md").write_text("Our supervisor is Ada.\n")
    assert await make_search_docs(None).ainvoke({"query": "supervisor"}) == "[mine.md]\nOur supervisor is Ada."


def test_the_sample_documents_are_short_and_ship_as_package_data() -> None:
    import tomllib

    from chatplane.tools.docs import SAMPLE_DOCS

    files = sorted(p.name for p in SAMPLE_DOCS.glob("*.md"))
    assert files == ["README.md", "agents.md", "api.md", "chatplane.md"]
    assert all((SAMPLE_DOCS / name).stat().st_size < 4000 for name in files)
    root = Path(__file__).resolve().parents[2]
    package_data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "tools/sample_docs/*.md" in package_data["chatplane"]


async def test_a_documents_question_is_answered_offline_out_of_the_box(
    client_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The react agent's search_docs finds the sample documents with the default settings (no folder configured)."""
    from tests.conftest import make_settings

    monkeypatch.chdir(tmp_path)
    model = 'fake:tool:search_docs:{"query":"which agents are there"}|See above.'
    client = await client_for(make_settings(model=model, default_agent="react"))
    thread = (await client.post("/v1/threads", json={})).json()["thread_id"]
    run = (await client.post(f"/v1/threads/{thread}/runs", json={"message": "Which agents are there?"})).json()
    assert run["status"] == "succeeded"
    messages = (await client.get(f"/v1/threads/{thread}/messages")).json()["messages"]
    (result,) = [m for m in messages if m["role"] == "tool"]
    assert result["status"] != "error" and "[agents.md]" in result["content"]
