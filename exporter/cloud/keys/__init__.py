"""Temporary access keys: fetched from where the exporter runs (an ECS agency, CCE pod
identity, OIDC workload identity federation, an IdP's ID token), one module a source as
the official SDK's ``auth/internal.py`` has one accessor a source, and renewed before they
expire (``renewal``)."""
