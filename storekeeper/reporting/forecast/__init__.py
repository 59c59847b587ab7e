"""Demand forecast per (SKU, warehouse) and the reorder points it sets (docs/forecast.md)."""
