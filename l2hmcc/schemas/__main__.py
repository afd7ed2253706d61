"""Rewrite the committed JSON Schemas: ``python -m l2hmcc.schemas``."""

from l2hmcc.schemas import write

for path in write():
    print(f"wrote {path}")
