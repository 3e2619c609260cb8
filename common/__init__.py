"""Shared building blocks for every paper replication in this repository.

Everything a paper needs twice lives here exactly once: configs, registries, datasets, the
training loop, measurement, experiment tracking and report generation. ``common`` never imports
``papers``.
"""

__version__ = "0.1.0"
