"""Start Django for the catalog inside a Python process: ``configure(db=..., url=...)`` then use the ORM."""

from __future__ import annotations

import os

from ..errors import SxtsegError

__all__ = ["configure", "CatalogError", "refresh_sqlite_statistics"]

_configured: tuple | None = None


class CatalogError(SxtsegError):
    """The catalog cannot be used: an unreachable database, a bad URL, Django missing."""


def _password(url: str | None) -> str:
    from urllib.parse import urlparse

    return (urlparse(url).password or "\0") if url else "\0"


def _without_password(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages)."""
    secret = _password(url)
    return url.replace(f":{secret}@", ":***@") if secret != "\0" else url


def configure(db=None, url=None, *, migrate: bool = True) -> None:
    """Point Django at the catalog database and set it up (once per process).

    Parameters
    ----------
    db : path, optional
        SQLite file (default: ``SXTSEG_CATALOG_DB``, else the user's data directory).
    url : str, optional
        ``postgresql://...`` of a shared server (default ``SXTSEG_CATALOG_URL``).
    migrate : bool
        Apply the shipped migrations (creates the tables of a new database).

    Raises
    ------
    CatalogError
        Django is not installed (``pip install "sxtseg[catalog]"``), the
        process was configured for another database already, or the database
        cannot be reached.
    """
    global _configured
    if url is not None:
        os.environ["SXTSEG_CATALOG_URL"] = str(url)
    if db is not None:
        os.environ["SXTSEG_CATALOG_DB"] = str(db)
    wanted = (os.environ.get("SXTSEG_CATALOG_URL"), os.environ.get("SXTSEG_CATALOG_DB"))
    if _configured is not None:
        if _configured != wanted:
            raise CatalogError(f"this process already uses the catalog at {_configured}; one catalog per process")
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sxtseg.catalog.settings")
    try:
        import django
    except ImportError as exc:
        raise CatalogError(f"the catalog needs Django: pip install \"sxtseg[catalog]\" ({exc})") from exc
    django.setup()
    if migrate:
        from django.core.management import call_command
        from django.db import OperationalError

        try:
            call_command("migrate", verbosity=0, interactive=False)
        except OperationalError as exc:
            where = _without_password(wanted[0]) if wanted[0] else (wanted[1] or "the default SQLite file")
            raise CatalogError(f"catalog database {where}: cannot be reached "
                               f"({str(exc).strip().replace(_password(wanted[0]), '***')})") from exc
    _configured = wanted


def refresh_sqlite_statistics(connection) -> None:
    """ANALYZE a SQLite catalog, so that its query planner knows its tables; nothing on other databases.

    The statistics are estimated from about 1,000 rows per index (``PRAGMA
    analysis_limit``): about a millisecond however large the tables are (a
    full ANALYZE on SQLite before 3.32, which lacks that setting).  The object
    pages need them (see migration ``0003_object_class_id_index``).

    Parameters
    ----------
    connection : django.db.backends.base.base.BaseDatabaseWrapper
        The catalog's database connection.
    """
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA analysis_limit")
        row = cursor.fetchone()
        if row is None:  # SQLite before 3.32 (Django 5.2 takes 3.31): no limit
            cursor.execute("ANALYZE")
            return
        previous = int(row[0])
        cursor.execute("PRAGMA analysis_limit=1000")
        try:
            cursor.execute("ANALYZE")
        finally:
            cursor.execute(f"PRAGMA analysis_limit={previous}")
