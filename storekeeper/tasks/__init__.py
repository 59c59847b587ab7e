"""Background work: durable jobs, the leader lease, the scheduler loop and the Celery app."""
