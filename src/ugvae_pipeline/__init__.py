"""ugvae-pipeline: the Unsupervised Global VAE (UG-VAE) as a Kedro project."""

__version__ = "0.1.0"
