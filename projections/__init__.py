"""Projection framework and built-in projections."""
