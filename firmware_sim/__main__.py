"""Entry point of `python -m firmware_sim`."""

from __future__ import annotations

import sys

from firmware_sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
