"""The domain: what is watched (targets, credentials) and what is known about it (state)."""
