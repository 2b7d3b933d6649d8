"""``python -m llenergymeasure.cli``."""

import sys

from llenergymeasure.cli import main

sys.exit(main())
