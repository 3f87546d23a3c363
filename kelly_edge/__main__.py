import sys

from kelly_edge.cli import main

sys.exit(main())
