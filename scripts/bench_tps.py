"""End-to-end TPS benchmark: the same as `somnode bench` (see `--help`)."""

import sys

from node.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
