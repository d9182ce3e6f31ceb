"""Frozen types every layer above shares: results, settings, check outcomes, the check catalogue, the run report.

Imports only harness.util."""
