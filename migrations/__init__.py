"""Alembic migrations of the tfsgate catalog; run them with control_plane.catalog.migrate."""
