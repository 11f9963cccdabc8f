"""A time limit on the SQL statements of web requests (PostgreSQL), and the 503 answer when one is cancelled.

At 10^8 object rows a filter that no index serves can read the whole table for minutes, holding a
worker and the server's disks for every other user.  The web server processes
(:mod:`sxtseg.catalog.wsgi` under gunicorn, ``sxtseg catalog serve``) call
:func:`limit_request_statements`, so PostgreSQL cancels any statement of theirs that runs longer
than ``SXTSEG_CATALOG_STATEMENT_TIMEOUT_S`` seconds (default 30; 0: no limit); waiting for a lock
counts.  :class:`StatementTimeoutMiddleware` turns the cancellation into a 503 that says what
happened.  Ingest from the command line and migrations do not call it: they run unlimited.
SQLite (one user) has no such limit.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse

__all__ = ["StatementTimeoutMiddleware", "limit_request_statements"]

_DISPATCH_UID = "sxtseg-catalog-statement-timeout"
#: PostgreSQL's SQLSTATE for a cancelled statement (statement_timeout, or pg_cancel_backend).
QUERY_CANCELED = "57014"


def limit_request_statements(seconds: float | None = None) -> None:
    """Have PostgreSQL cancel any SQL statement of this process that runs longer than ``seconds``.

    Sets ``statement_timeout`` on every connection Django opens from now on,
    and closes the open ones so that the next query opens one with it.
    Nothing changes on SQLite.

    Parameters
    ----------
    seconds : float, optional
        The limit in seconds; 0 removes it (default: the setting
        ``REQUEST_STATEMENT_TIMEOUT_S``, from ``SXTSEG_CATALOG_STATEMENT_TIMEOUT_S``).

    Examples
    --------
    >>> limit_request_statements(30)  # doctest: +SKIP
    """
    from django.conf import settings
    from django.db import connections
    from django.db.backends.signals import connection_created

    seconds = settings.REQUEST_STATEMENT_TIMEOUT_S if seconds is None else float(seconds)
    milliseconds = str(max(0, round(seconds * 1000)))

    def set_timeout(sender, connection, **kwargs):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, false)", [milliseconds])

    connection_created.disconnect(dispatch_uid=_DISPATCH_UID)
    connection_created.connect(set_timeout, weak=False, dispatch_uid=_DISPATCH_UID)
    connections.close_all()


def _cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` (Django's wrapper of a driver error) is PostgreSQL cancelling a statement."""
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) == QUERY_CANCELED


class StatementTimeoutMiddleware:
    """Answer 503, saying why, when the database cancelled a statement of the request (its time limit).

    An API request gets ``{"detail": ...}`` as JSON, a page a plain-text
    message; any other error passes on.  A streamed export whose query is
    cancelled after the first rows were sent stops early instead (its status
    line is gone by then; see docs/catalog.md, "Serving").
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from django.conf import settings
        from django.db import OperationalError

        if not isinstance(exception, OperationalError) or not _cancelled(exception):
            return None
        message = (f"the database stopped this request's query after its time limit "
                   f"({settings.REQUEST_STATEMENT_TIMEOUT_S:g} s, SXTSEG_CATALOG_STATEMENT_TIMEOUT_S) or "
                   f"on an administrator's request: narrow the filters (a run, a sample, a class) or ask "
                   f"for fewer rows")
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message}, status=503)
        return HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
