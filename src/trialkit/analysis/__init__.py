"""Outcome analysis: mixed models, small-sample inference, robust variance, effect sizes."""
