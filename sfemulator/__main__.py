"""``python -m sfemulator``: the same as ``actionflows emulator``."""

import sys

from .cli import main

sys.exit(main())
