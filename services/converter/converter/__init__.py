"""converter: takes a video job off the queue and turns its soundtrack into an MP3."""
