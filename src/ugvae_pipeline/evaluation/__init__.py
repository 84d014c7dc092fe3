"""Evaluation of trained UG-VAEs: encoding, group-structure metrics, baselines, figures.

Pure functions on arrays and models, no Kedro: every representation of the same groups is
scored the same way (``metrics``, ``scores``), beside the pooling baselines (``baselines``).
"""
