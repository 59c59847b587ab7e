"""Backups that restore: ``storekeeper backup`` and ``storekeeper restore`` (plumbing, no context).

``run`` is the use case; ``sqlite`` and ``postgres`` copy a database of their kind; ``manifest``
describes a backup so that a restore can check it before touching anything.
"""
