"""Catalog: products, their prices and storage ranges."""
