"""``python -m edgeface.cli``: the ``edgeface`` command."""
import sys

from . import main

sys.exit(main())
