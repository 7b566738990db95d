"""`python -m mcudeploy` is the `mcudeploy` command."""

import sys

from mcudeploy.cli import main

sys.exit(main())
