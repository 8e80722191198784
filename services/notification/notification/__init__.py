"""notification: tells a job's owner that the MP3 is ready (a log line always, e-mail when configured)."""
