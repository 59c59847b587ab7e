"""Payments: the gateway port and its adapters."""
