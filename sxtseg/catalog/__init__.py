"""The smart catalog: cells, CT exams and chest X-rays with their analysis runs, measures and objects.

An optional extra (``pip install "sxtseg[catalog]"``: Django, Django REST
Framework, drf-spectacular, psycopg).  Nothing of Django is imported by
``import sxtseg`` or by importing this package; :class:`Client` imports it
only for a local database.

- ``sxtseg catalog add RESULTS_DIR... --project P`` registers results folders;
- ``sxtseg catalog serve`` serves the REST API (``/api/``) and admin;
- :class:`Client` queries it from Python, as pandas DataFrames.

The database is SQLite in the user's data directory by default
(``--db PATH`` / ``SXTSEG_CATALOG_DB``), or a shared PostgreSQL server
(``SXTSEG_CATALOG_URL=postgresql://...``).  See ``docs/catalog.md``.
"""

__all__ = ["CatalogError", "Client", "configure"]


def __getattr__(name: str):
    # the command line imports sxtseg.catalog.commands: keep this package's import free of pandas and Django
    if name == "Client":
        from .client import Client

        return Client
    if name in ("CatalogError", "configure"):
        from . import database

        return getattr(database, name)
    raise AttributeError(f"module 'sxtseg.catalog' has no attribute {name!r}")
