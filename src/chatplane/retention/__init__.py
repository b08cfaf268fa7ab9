"""Retention: ``prune`` (what is deleted, ``chatplane.retention.prune``) and the job that runs it
(``chatplane.retention.job``)."""

from chatplane.retention.job import RetentionJob, exclusive, prune_once
from chatplane.retention.prune import PRUNE_LOCK, PruneReport, parse_duration, prune

__all__ = ["PRUNE_LOCK", "PruneReport", "RetentionJob", "exclusive", "parse_duration", "prune", "prune_once"]
