"""Tools for the project's own upkeep; not installed with the package."""
