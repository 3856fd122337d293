"""``python -m node``: the ``somnode`` command line, for processes started without the installed script."""

import sys

from node.cli import main

sys.exit(main())
