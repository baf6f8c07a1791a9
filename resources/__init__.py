"""Shipped assets (icons, style sheets, the demo model); read with importlib.resources."""
