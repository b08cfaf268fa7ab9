"""Command-line options the benchmark runners share: the mock model's pace, and the PostgreSQL admin connection."""

from __future__ import annotations

import argparse
import os

ADMIN_PG_URL = os.environ.get("CHATPLANE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def add_mock_options(parser: argparse.ArgumentParser) -> None:
    """``--mock-ttft``, ``--mock-tokens``, ``--mock-token-interval``: how the mock OpenAI server answers."""
    parser.add_argument("--mock-ttft", type=float, default=0.2)
    parser.add_argument("--mock-tokens", type=int, default=20)
    parser.add_argument("--mock-token-interval", type=float, default=0.01)


def add_pg_url_option(parser: argparse.ArgumentParser) -> None:
    """``--pg-url``: an admin connection; each PostgreSQL run creates and drops its own database."""
    parser.add_argument(
        "--pg-url",
        default=ADMIN_PG_URL,
        help="an admin connection; each PostgreSQL run creates and drops its own database",
    )
