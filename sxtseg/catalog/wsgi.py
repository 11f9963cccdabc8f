"""WSGI entry point for a shared deployment: ``gunicorn sxtseg.catalog.wsgi:application``.

Configure with the environment (see :mod:`sxtseg.catalog.settings`), e.g.
``SXTSEG_CATALOG_URL=postgresql://...``; run ``sxtseg catalog migrate`` once first.  Every SQL
statement of a request is limited to ``SXTSEG_CATALOG_STATEMENT_TIMEOUT_S`` seconds (default 30)
on PostgreSQL.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sxtseg.catalog.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

from sxtseg.catalog.statement_timeout import limit_request_statements  # noqa: E402 - needs Django set up

limit_request_statements()  # SXTSEG_CATALOG_STATEMENT_TIMEOUT_S for every request's SQL (PostgreSQL)
