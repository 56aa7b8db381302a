"""``python -m ferrymq.bench``: the same command as ``ferrymq bench`` (see ferrymq/bench/command.py)."""

import sys

from ferrymq.bench.command import main

if __name__ == "__main__":
    sys.exit(main())
