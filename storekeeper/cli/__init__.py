"""The ``storekeeper`` command line."""
