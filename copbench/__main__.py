"""``python -m copbench``."""

import sys

from .cli import main

sys.exit(main())
