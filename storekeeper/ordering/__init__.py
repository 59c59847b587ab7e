"""Ordering: orders, their lines, idempotent placement and the order state machine."""
