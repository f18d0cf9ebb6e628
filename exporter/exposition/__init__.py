"""Exposition: a snapshot turned into Prometheus text, rendered once and served many times."""
