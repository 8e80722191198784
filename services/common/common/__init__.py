"""What the four services share: settings, logging, queue topology, storage and jobs."""
