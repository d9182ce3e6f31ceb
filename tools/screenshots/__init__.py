"""The report screenshots: a synthetic sample run made by the functions a run calls, and headless Chromium."""
