"""Frozen types every layer above shares: results, settings, inference requests and outcomes, stack facts,
model dirs, check outcomes, the check catalogue, the run report. Imports only harness.util."""
