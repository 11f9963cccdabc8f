"""gunicorn settings of the catalog's shared deployment: ``gunicorn -c python:sxtseg.catalog.gunicorn_config ...``.

The other settings (workers, bind address) stay on gunicorn's command line; see docs/catalog.md.

``post_worker_init``: once a worker has loaded the catalog, it finishes Django's lazy set-up (the
URLs, which import the views, serializers and filters), collects what that left as garbage and
moves every object that remains out of the garbage collector's sight (:func:`gc.freeze`).  The
collector's full passes then walk only the objects of requests, not the hundreds of thousands of
Django, DRF and library objects a worker holds for its whole life: those passes were the long
pauses in the p95 of the object query.
"""

from __future__ import annotations

import gc


def post_worker_init(worker) -> None:
    """gunicorn's hook, in each worker after it has loaded the WSGI application.

    Parameters
    ----------
    worker : gunicorn.workers.base.Worker
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URL configuration and the views now, not on a request
    gc.collect()
    gc.freeze()
    worker.log.info("sxtseg catalog worker %s: %d objects frozen (gc.freeze)", worker.pid, gc.get_freeze_count())
