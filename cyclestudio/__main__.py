"""`python -m cyclestudio`: the same entry point as the `cyclestudio` command."""

import sys

from cyclestudio.cli import main

sys.exit(main())
