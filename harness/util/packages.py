"""Installed package versions, read from metadata: nothing is imported, so the parent process stays light."""

from __future__ import annotations

from importlib import metadata


def package_version(name: str) -> str | None:
    """The installed version of distribution `name`, None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
