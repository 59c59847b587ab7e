"""Live updates: stock, order status and alerts pushed to clients over SSE and WebSocket,
tailed from the outbox by one hub per API process (docs/live.md)."""
