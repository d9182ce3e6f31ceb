"""Scale-out: `--shard auto` from a CI system's variables, the CI systems' limits, the per-phase cost model behind
`ocr-harness plan`, and `report merge` (shards combined into the report of an unsharded run)."""
