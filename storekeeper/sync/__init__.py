"""Offline-first sync: replicas pull the catalog and their warehouse's stock, push mutations."""
