"""Schedules (crons): an assistant run on a cron expression in a time zone — the expression (``expression``), the
owner's schedules (``service``) and the job that runs due ticks in exactly one process (``scheduler``); rows and
claims in ``chatplane.storage.schedules``."""
