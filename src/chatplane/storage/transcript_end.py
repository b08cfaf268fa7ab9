"""Where a thread's transcript ends (``TranscriptEnd``), read in the batch that accepts a run: its last row, and
whether the thread's current branch ends elsewhere (``chatplane.storage.branches``)."""

from __future__ import annotations

from chatplane.storage.database import Result, Statement
from chatplane.storage.unit_of_work import TranscriptEnd

__all__ = ["FORKED", "NO_TRANSCRIPT", "SWITCHED", "end_of", "end_statement"]

NO_TRANSCRIPT: TranscriptEnd = (0, "")
"""Where a thread's transcript ends when it has none."""

SWITCHED = "\x00switched"
"""The message id of a transcript end whose thread was just switched to another branch (its head is set): no cached
tail matches it, and the run's append resets the head."""
FORKED = "\x00forked"
"""The message id of the end of a forked thread with no rows of its own (its history is another thread's)."""


def end_statement(thread_id: str) -> Statement:
    """The statement that reads where ``thread_id``'s transcript ends (``end_of`` its result), and whether its
    current branch ends elsewhere (``chatplane.storage.branches``)."""
    return (
        "SELECT t.head, (SELECT fork_of FROM chatplane_fork_refs WHERE thread_id = %s) AS fork_of, m.seq, "
        "m.message_id FROM chatplane_threads AS t LEFT JOIN (SELECT seq, message_id FROM chatplane_messages "
        "WHERE thread_id = %s ORDER BY seq DESC LIMIT 1) AS m ON true WHERE t.thread_id = %s",
        (thread_id, thread_id, thread_id),
    )


def end_of(result: Result) -> TranscriptEnd:
    rows = result[0]
    if not rows:
        return NO_TRANSCRIPT
    row = rows[0]
    seq = int(row["seq"]) if row["seq"] is not None else 0
    if row["head"] is not None:
        return (seq, SWITCHED)
    if row["seq"] is None:
        return (0, FORKED) if row["fork_of"] is not None else NO_TRANSCRIPT
    return (seq, str(row["message_id"]))
