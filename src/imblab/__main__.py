"""``python -m imblab`` is the ``imblab`` command."""

import sys

from imblab.cli import main

sys.exit(main())
