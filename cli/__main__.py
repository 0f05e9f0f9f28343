"""``python -m cli`` is the same as the ``spotrec`` command."""

import sys

from cli import main

sys.exit(main())
