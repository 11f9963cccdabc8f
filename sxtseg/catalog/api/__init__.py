"""The REST API of the catalog (Django REST Framework): serializers, filters, views."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ...errors import SxtsegError


def exception_handler(exc, context):
    """DRF's handler, plus: bad input (an :class:`SxtsegError`) is 400 and a refused write 403, with the message."""
    if isinstance(exc, SxtsegError):
        return Response({"detail": str(exc)}, status=400)
    if isinstance(exc, PermissionError):
        return Response({"detail": str(exc)}, status=403)
    return drf_exception_handler(exc, context)
