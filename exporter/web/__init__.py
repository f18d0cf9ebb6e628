"""HTTP serving: the endpoints, the landing page, TLS and basic auth."""
