"""Installed versions of the libraries a worker reports in its ``hello`` and
its environments' descriptions, read from package metadata so that asking
imports nothing (the worker must not import numpy or gymnasium before its
``--stdio`` streams are set up).
"""

from __future__ import annotations


def version_of(distribution: str) -> str | None:
    """An installed distribution's version, read from its metadata without importing it."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
