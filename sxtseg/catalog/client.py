"""``Client``: the catalog from a notebook, as pandas DataFrames, over HTTP or straight from a database file.

Examples::

    from sxtseg.catalog import Client
    catalog = Client("http://127.0.0.1:8000", token="...")    # a running `sxtseg catalog serve`
    catalog = Client("~/cells.sqlite3")                          # or a local SQLite catalog, no server
    samples = catalog.samples(modality="sxt", infection="infected")
    dmvs = catalog.objects(class_name="dmv", volume_um3__gte=0.01)
    catalog.aggregate("dmv_count", by="hours_post_infection")

Both forms answer through the same REST API (the local one through Django's
test client in-process, so the filters and permissions are the server's).
"""

from __future__ import annotations

import http.client
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd

from ..errors import InvalidArgumentError
from .database import CatalogError

__all__ = ["Client"]


class Client:
    """Read (and add to) a catalog; every query returns a pandas DataFrame.

    Parameters
    ----------
    url_or_path : str or Path
        ``http(s)://host:port`` of a catalog server, or the path of a SQLite
        catalog (or ``postgresql://...`` to query a shared database directly).
    token : str, optional
        API token (``sxtseg catalog createuser`` prints one); for a local
        database, the user is found from it, else the first superuser acts
        (or, with no users, everything may be read: the file is yours).
    """

    def __init__(self, url_or_path, token: str | None = None, timeout_s: float = 60.0):
        self.token = token
        self.timeout_s = timeout_s
        target = str(url_or_path)
        self._local = None
        if target.startswith(("http://", "https://")):
            self.url = target.rstrip("/")
        else:
            from .database import configure

            if target.startswith(("postgresql://", "postgres://")):
                configure(url=target)
            else:
                configure(db=Path(target).expanduser())
            from django.conf import settings
            from django.test import Client as DjangoClient

            if "testserver" not in settings.ALLOWED_HOSTS:  # the in-process client's host name
                settings.ALLOWED_HOSTS.append("testserver")
            self.url = ""
            self._local = DjangoClient(raise_request_exception=True)
            self._login_local()

    def _login_local(self) -> None:
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        if self.token:
            token = Token.objects.filter(key=self.token).select_related("user").first()
            if token is None:
                raise CatalogError("unknown token for this catalog")
            self._local.force_login(token.user)
            return
        user = get_user_model().objects.filter(is_superuser=True).order_by("id").first()
        if user is not None:
            self._local.force_login(user)
        else:  # a database file you can open is yours to read
            from django.conf import settings

            settings.ANONYMOUS_READ = True

    # ------------------------------------------------------------------ transport
    def _get(self, path: str, params: dict | None = None) -> bytes:
        return self._get_with_headers(path, params)[0]

    def _get_with_headers(self, path: str, params: dict | None = None) -> tuple[bytes, dict]:
        """The body of ``GET path?params`` and its response headers (names in lower case)."""
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        address = f"{path}?{query}" if query else path
        if self._local is not None:
            response = self._local.get(address)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            if response.status_code >= 400:
                raise CatalogError(f"GET {address}: {response.status_code} {body.decode(errors='replace')[:500]}")
            return body, {name.lower(): value for name, value in response.headers.items()}
        request = urllib.request.Request(self.url + address, headers=self._headers())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read(), {name.lower(): value for name, value in response.headers.items()}
        except http.client.IncompleteRead as exc:
            raise CatalogError(f"GET {address}: the answer stopped after {len(exc.partial)} bytes "
                               f"(a server time limit or a dropped connection); ask for fewer rows") from exc
        except urllib.error.HTTPError as exc:
            raise CatalogError(f"GET {address}: {exc.code} {exc.read().decode(errors='replace')[:500]}") from exc
        except urllib.error.URLError as exc:
            raise CatalogError(f"{self.url}: cannot be reached ({exc.reason})") from exc

    def _post(self, path: str, payload: dict) -> dict:
        body = json.dumps(payload).encode()
        if self._local is not None:
            response = self._local.post(path, body, content_type="application/json")
            if response.status_code >= 400:
                raise CatalogError(f"POST {path}: {response.status_code} {response.content.decode()[:500]}")
            return response.json()
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={**self._headers(), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise CatalogError(f"POST {path}: {exc.code} {exc.read().decode(errors='replace')[:500]}") from exc

    def _headers(self) -> dict:
        return {"Authorization": f"Token {self.token}"} if self.token else {}

    def _pages(self, path: str, params: dict) -> pd.DataFrame:
        rows, query = [], {**params, "page_size": 10_000}
        address = path
        while True:
            page = json.loads(self._get(address, query))
            rows.extend(page["results"])
            if not page.get("next"):
                return pd.DataFrame(rows)
            parts = urllib.parse.urlparse(page["next"])
            address, query = parts.path, dict(urllib.parse.parse_qsl(parts.query))

    # ------------------------------------------------------------------ queries
    def projects(self) -> pd.DataFrame:
        """The projects you can see."""
        return self._pages("/api/projects/", {})

    def samples(self, **filters) -> pd.DataFrame:
        """Samples; filters as the API takes them (``modality="sxt"``, ``hours_post_infection__gte=6``,
        ``tag="batch-2"``, ``**{"m.dmv_count__gte": 10}``...)."""
        return self._pages("/api/samples/", filters)

    def runs(self, **filters) -> pd.DataFrame:
        """Runs, one column per summary measure (``measure.<name>``) besides the run's fields."""
        table = self._pages("/api/runs/", filters)
        if "measures" in table:
            wide = pd.DataFrame([{f"measure.{m['name']}": m["value"] for m in ms} for ms in table.pop("measures")])
            table = pd.concat([table, wide], axis=1)
        return table

    def objects(self, **filters) -> pd.DataFrame:
        """Objects across runs, all rows that match (one CSV export, not page by page).

        Raises :class:`CatalogError` when fewer rows arrive than the server
        counted (``X-Row-Count``): an export that stopped early.
        """
        body, headers = self._get_with_headers("/api/objects/", {**filters, "export": "csv"})
        return _complete_export(pd.read_csv(io.BytesIO(body)), headers.get("x-row-count"), filters)

    def aggregate(self, measure: str, by: str | list[str] = (), **filters) -> pd.DataFrame:
        """``measure`` grouped by condition fields: count, mean, std, median, q1, q3, min, max per group."""
        by = ",".join([by] if isinstance(by, str) else list(by))
        answer = json.loads(self._get("/api/aggregate/", {"measure": measure, "by": by or None, **filters}))
        return pd.DataFrame(answer["groups"])

    def add(self, results_dir, project: str, *, conditions: dict | None = None, fields: dict | None = None,
            tags: list[str] | None = None) -> pd.DataFrame:
        """Register a results folder (a path the server can read); returns its runs."""
        if not project:
            raise InvalidArgumentError("a project name is needed")
        runs = self._post("/api/runs/", {"results_dir": str(Path(results_dir).resolve()), "project": project,
                                         "conditions": conditions or {}, "fields": fields or {},
                                         "tags": list(tags or [])})
        return pd.DataFrame(runs)


def _complete_export(table: pd.DataFrame, row_count: str | None, filters: dict) -> pd.DataFrame:
    """``table`` if it holds at least the ``row_count`` rows the server counted (more: rows added since the count).

    >>> _complete_export(pd.DataFrame({"id": [1, 2]}), "2", {}).shape
    (2, 1)
    """
    if row_count is not None and len(table) < int(row_count):
        raise CatalogError(f"objects export {filters or '(all)'}: {len(table)} rows received of {int(row_count)} "
                           f"counted by the server: the export stopped early (a server time limit or a dropped "
                           f"connection); ask for fewer rows")
    return table
