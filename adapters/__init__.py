"""Data-to-grid transformers: raw data in, float32 grids ``(n, channels, height, width)`` out.

Adapters never import the CNN core (``gridnet``); the core never imports an adapter.
"""
__all__ = []
