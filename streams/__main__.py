"""`python -m streams` is the `funnel` console script."""

import sys

from streams.cli import main

sys.exit(main())
