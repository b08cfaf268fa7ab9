"""Storage: everything chatplane keeps, on memory, SQLite or PostgreSQL, behind one ``Storage`` per process.

===================  ==============================================================================================
``engine``           ``open_storage(settings)`` → ``Storage``: the database adapter, the checkpointer, readiness
``probe``            PostgreSQL's readiness on a connection of its own (a busy pool is not "down")
``database``         the async adapter for chatplane's own tables (``execute``, ``transaction``, one-trip ``batch``)
``schema``           chatplane's tables and their migrations
``turns``            the unit of work of one run: what was read as it was accepted, the writes it holds for its
                     outcome's commit, and the commit policy (``TurnStore``: accept, open, finish)
``prefetch``         a run's first checkpoint read, answered with what its acceptance read
``postgres_saver``   LangGraph's PostgreSQL saver on chatplane's pool, taking part in a run's unit of work
``sqlite_saver``     LangGraph's SQLite saver, taking part in a run's unit of work
``transcript``       a thread's settled messages, append-only
``threads``          the thread registry (owner, agent, title, metadata)
``runs``             run records: the queue and the leases of every process
``keys``             API keys (hashed); ``key_changes``: PostgreSQL LISTEN/NOTIFY for their caches
``usage``            token usage and cost, from the run records
===================  ==============================================================================================
"""

from chatplane.storage.engine import STORAGE_ERRORS, Storage, StorageKind, open_storage, redact_url

__all__ = ["STORAGE_ERRORS", "Storage", "StorageKind", "open_storage", "redact_url"]
