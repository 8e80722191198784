from mp3c.cli import main

main()
