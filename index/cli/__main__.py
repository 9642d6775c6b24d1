"""``python -m index.cli``: the same as the ``newsdesk`` command."""

import sys

from index.cli import main

sys.exit(main())
