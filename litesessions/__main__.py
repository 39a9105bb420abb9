"""``python -m litesessions`` runs the command line."""

import sys

from litesessions.cli import main

sys.exit(main())
