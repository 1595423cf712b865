"""Each domain's concurrency races: a module per domain with a SCENARIOS dict (see tests/test_concurrency.py)."""
