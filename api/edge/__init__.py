"""The edge every request passes: who is asking (auth), limits and security headers, the per-request session,
one way through every write (writes), the answers kept for Idempotency-Key retries, the audit log, and the one
problem+json shape of every error."""
