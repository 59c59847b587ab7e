"""``storekeeper-client`` (or ``python -m storekeeper_client``): the device's command line."""

from __future__ import annotations

import sys

from storekeeper_client.cli import main as run


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()
