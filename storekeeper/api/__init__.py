"""The HTTP API: the app factory, shared dependencies and error mapping."""
