"""Training loop, its configuration and seeding (no Kedro)."""
