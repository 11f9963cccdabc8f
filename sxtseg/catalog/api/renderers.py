"""The API's JSON renderer: DRF's :class:`~rest_framework.renderers.JSONRenderer`, encoded by orjson.

Encoding a page of 100 object rows (35 fields each) with the standard library's
``json`` took about a fifth of the object list's CPU time per request; orjson
(a compiled encoder) writes the same JSON values several times faster
(``docs/benchmarks.md``, "Catalog").  What differs from DRF's own output, all
valid JSON of the same values: some floats are written without an exponent
(``0.00001`` for ``1e-05``) or with a shorter one (``2.5e-7``), and a NaN or
infinity is written as ``null`` where DRF's strict renderer raised an error
(a 500).  Types orjson does not know (dates and times, decimals, lazy
strings, numpy values) are handed to DRF's own encoder, so they read as
before.  An indented rendering (``Accept: application/json; indent=4``)
keeps DRF's path.
"""

from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

__all__ = ["OrjsonRenderer"]

_DRF_ENCODER = JSONEncoder()
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


class OrjsonRenderer(JSONRenderer):
    """DRF's JSON renderer with orjson's encoder (compact, UTF-8, as DRF's defaults).

    >>> OrjsonRenderer().render({"volume_um3": 0.25, "labels": (1, 2)})
    b'{"volume_um3":0.25,"labels":[1,2]}'
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        return orjson.dumps(data, default=_DRF_ENCODER.default, option=_OPTIONS)
