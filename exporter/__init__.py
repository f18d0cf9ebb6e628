"""Prometheus exporter for Huawei Cloud ModelArts dev-server images and Workspace image servers."""

__version__ = "0.1.0"
