"""Research scripts (no Kedro): train variants and score them with the fixed protocols."""
