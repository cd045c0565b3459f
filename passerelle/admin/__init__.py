"""Admin JSON API under /manage/api/ (and later the admin web UI)."""

from passerelle.admin.api import setup_routes

__all__ = ["setup_routes"]
