"""``python -m harness``: the same as the ``hash-harness`` command."""

from harness.cli import console_main

console_main()
