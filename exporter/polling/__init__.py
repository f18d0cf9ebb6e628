"""Polling: one cycle over every target, on an APScheduler schedule."""
