"""The execution layer: where inference runs. Worker processes and the in-process worker (one inference core),
the pool that keeps loaded workers across passes, the scheduler that feeds them calls, the executors (local,
Ray), cancellation on signals and the speed check's yardstick. Checks call it; it imports no check and no run."""
