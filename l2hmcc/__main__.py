"""``python -m l2hmcc``."""

from l2hmcc.cli import run

run()
