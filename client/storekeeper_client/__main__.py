"""``storekeeper-client`` (or ``python -m storekeeper_client``): the device's command line.

The commands need the ``cli`` extra (typer, rich); without it this says how to get it instead
of showing a traceback.
"""

from __future__ import annotations

import sys

_CLI_PACKAGES = frozenset({"typer", "click", "rich"})


def main() -> None:
    """Console-script entry point."""
    try:
        from storekeeper_client.cli import app
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in _CLI_PACKAGES:
            raise
        sys.exit(
            f"storekeeper-client: the command line needs {exc.name}, which the library does not: "
            "pip install 'storekeeper-client[cli]'"
        )
    app(prog_name="storekeeper-client")


if __name__ == "__main__":
    main()
