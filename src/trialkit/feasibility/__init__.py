"""Feasibility outcomes, progression criteria and planning the definitive trial."""
