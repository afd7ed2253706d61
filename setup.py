"""Package list for setuptools (all other metadata is in pyproject.toml).

``packages.find`` only sees directories under l2hmcc/, so the two packages that pyproject's
``package-dir`` maps from the top of the repository (grammar/ → l2hmcc.grammar, templates/ →
l2hmcc.templates) are added by name; every package under l2hmcc/ is still found
automatically.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["l2hmcc", "l2hmcc.*"]),
        "l2hmcc.grammar",
        "l2hmcc.templates",
    ]
)
