"""Storekeeper: a self-hostable inventory and order backend."""

__version__ = "0.1.0"
