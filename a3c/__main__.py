"""`python -m a3c`: the `a3c` command."""

import sys

from a3c.cli import main

if __name__ == "__main__":
    sys.exit(main())
