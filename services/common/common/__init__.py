"""What the four services share. Read these first: they are the product's core.

  jobs.py       a job's life: queued -> converting -> done | failed, owned by one account, and the
                rules every service applies to it (who may see it, when it is final)
  removal.py    JobDeletion: a job and its files go together, whichever service deletes them
  formats.py    the video containers accepted: one table that the gateway sniffs by and the converter reads by
  handler.py    the contract of a queue consumer's handler: Delivery in, Outcome out

The plumbing around them, each module one job:
  settings.py   every environment variable, typed and checked at start
  service.py    start-up of both kinds of service: serve_http (gunicorn) and serve_consumer
  broker.py     RabbitMQ topology and a confirming publisher; consumer.py the consumer that never loses one
  storage.py    MongoDB and the GridFS buckets of videos and MP3s
  http.py, http_worker.py, shutdown.py, healthcheck.py, metrics.py, telemetry.py, logs.py
  patches.py    the only place that relies on a library's private parts, each checked at start
"""
