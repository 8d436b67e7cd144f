"""History: projects every job event into PostgreSQL, idempotently."""
