import sys

from standins.build import main

sys.exit(main())
