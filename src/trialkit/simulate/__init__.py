"""Data-generating processes shared by power, tests, docs and the demo."""
