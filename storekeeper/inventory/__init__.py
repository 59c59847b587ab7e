"""Inventory: warehouses, the stock ledger, and reservations that never oversell."""
