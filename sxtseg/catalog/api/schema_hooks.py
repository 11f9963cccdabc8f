"""drf-spectacular hooks: document the error answers every endpoint can give (so clients and schema tests know them)."""

from __future__ import annotations

_ERRORS = {
    "400": "bad input: the body names the field or file and what is wrong",
    "401": "not authenticated (send `Authorization: Token ...`, or log in)",
    "403": "authenticated, but without the role this needs on the project",
    "404": "no such row, or one in a project you cannot see",
}


def add_error_responses(result, generator, request, public):
    """Add 400/401/403/404 (``{"detail": ...}`` or per-field messages) to every operation."""
    schema = {"type": "object", "additionalProperties": True, "properties": {"detail": {"type": "string"}}}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code, text in _ERRORS.items():
                operation["responses"].setdefault(code, {"description": text,
                                                         "content": {"application/json": {"schema": schema}}})
    return result
