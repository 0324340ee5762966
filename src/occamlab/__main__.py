import sys

from occamlab.cli import main

sys.exit(main())
