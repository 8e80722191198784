"""mp3c: the command-line client of mp3converter."""
