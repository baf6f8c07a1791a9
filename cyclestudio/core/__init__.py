"""Torch-side core: no Qt is imported anywhere below this package."""
