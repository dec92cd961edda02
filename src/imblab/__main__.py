"""``python -m imblab`` is the ``imblab`` command."""

import sys

from imblab.app.main import main

sys.exit(main())
