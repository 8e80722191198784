"""Set once this process has been asked to stop, so that long responses (event streams) end on their
own instead of holding a graceful shutdown for its whole timeout; their clients reconnect elsewhere."""

import threading

requested = threading.Event()
