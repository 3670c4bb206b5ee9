"""``python -m bigem``: the ``bigem`` command line, for environments without its script."""

import sys

from ._entry import main

sys.exit(main())
