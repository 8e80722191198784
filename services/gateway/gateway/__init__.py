"""gateway: the public HTTP API; asks auth who the caller is, stores uploads, queues the work."""
