"""Data sources and group construction (no Kedro)."""
