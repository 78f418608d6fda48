"""Real servers on loopback for tests (owned by the LLM-backend suite)."""
