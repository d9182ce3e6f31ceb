"""The run layer: workflows that plan, execute and judge."""
