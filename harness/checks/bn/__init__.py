"""The `bn_drift` check's parts: what the worker feeds det and rec (capture), per-channel statistics against the
stored training statistics (channels), the approved reference and its per-model calibration, and planted faults."""
