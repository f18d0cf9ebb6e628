"""Configuration: the YAML schema, its resolution into settings, and how errors are told."""
