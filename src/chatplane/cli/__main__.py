"""``python -m chatplane.cli``, as ``python -m chatplane``."""

from chatplane.cli import main

main()
