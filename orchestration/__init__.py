"""Dagster code location for the scheduled flow: `dagster dev -m orchestration.definitions`."""
