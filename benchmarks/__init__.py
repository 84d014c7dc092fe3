"""Research tools that time the model: python -m benchmarks.benchmark (from the project root)."""
