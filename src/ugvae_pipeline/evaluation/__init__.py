"""Evaluation of trained UG-VAEs: encoding, group-structure metrics, baselines, figures.

Pure functions on arrays and models, no Kedro. ``protocol`` fixes the MNIST-series protocol
(groups, seeds, classifiers) so every variant is scored the same way.
"""
