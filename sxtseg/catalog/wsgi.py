"""WSGI entry point for a shared deployment: ``gunicorn sxtseg.catalog.wsgi:application``.

Configure with the environment (see :mod:`sxtseg.catalog.settings`), e.g.
``SXTSEG_CATALOG_URL=postgresql://...``; run ``sxtseg catalog migrate`` once first.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sxtseg.catalog.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
