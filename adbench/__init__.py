"""adbench: benchmark and comparison suite for resonant anomaly detection.

Importing the package is cheap (no torch, no scikit-learn): heavy libraries are imported inside the
functions that need them, so that ``adbench --version`` answers at once.
"""

__version__ = "0.1.0"
