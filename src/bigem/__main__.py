"""``python -m bigem``: the ``bigem`` command line, for environments without its script."""

import sys

from .cli import main

sys.exit(main())
