"""The ``chatplane`` command."""

from chatplane.cli.chat import main

__all__ = ["main"]
