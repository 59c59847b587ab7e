"""Accounts: users, roles, password hashing and tokens."""
