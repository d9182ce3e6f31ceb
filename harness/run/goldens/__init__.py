"""Golden workflows: how goldens are made (shared by refresh and the pytest plugin), a reviewed refresh, the
plugin's per-image session, and the approval record (speed baseline, BN reference and calibration)."""
