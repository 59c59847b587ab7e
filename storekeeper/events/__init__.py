"""Events: the transactional outbox every context writes its events to."""
