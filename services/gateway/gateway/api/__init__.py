"""The gateway's routes, one module per part of the public contract (docs/api.md)."""
