"""Django settings of the catalog, read from the environment (``DJANGO_SETTINGS_MODULE=sxtseg.catalog.settings``).

- ``SXTSEG_CATALOG_URL``: ``postgresql://user:password@host:port/dbname``
  for a shared PostgreSQL server; otherwise SQLite at ``SXTSEG_CATALOG_DB``
  (default ``catalog.sqlite3`` in the user's data directory, e.g.
  ``~/.local/share/sxtseg/``).
- ``SXTSEG_CATALOG_SECRET_KEY``: the secret key; without it one is generated
  on first use and kept with mode 0600 in ``secret_key`` beside the SQLite
  database (or in the user's data directory for PostgreSQL).
- ``SXTSEG_CATALOG_DEBUG=1``: Django's debug mode (never in production).
- ``SXTSEG_CATALOG_ALLOWED_HOSTS``: comma-separated host names (default
  ``localhost,127.0.0.1``; ``*`` for any).
- ``SXTSEG_CATALOG_ANONYMOUS_READ=1``: anonymous visitors may read every
  project (off by default: reading needs a logged-in project member).
- ``SXTSEG_CATALOG_STATEMENT_TIMEOUT_S``: seconds one SQL statement of a web
  request may run on PostgreSQL before the server cancels it and the request
  answers 503 (default 30; 0: no limit); see
  :mod:`sxtseg.catalog.statement_timeout`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import InvalidArgumentError


def data_dir() -> Path:
    """The user's data directory for sxtseg (created)."""
    from platformdirs import user_data_dir

    path = Path(user_data_dir("sxtseg", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


#: Settings of every SQLite catalog connection (docs/catalog.md, "SQLite settings"):
#:
#: - ``journal_mode=WAL``: readers do not block the writer (the server reads while `catalog add` ingests);
#: - ``synchronous=NORMAL``: in WAL mode a crash or power cut cannot corrupt the file, but the last
#:   commits before a power cut or OS crash may be lost (not on a crash of the process);
#: - ``cache_size=-65536``: a page cache of up to 64 MiB (default 2 MiB), so the (class_name, volume_um3)
#:   index, where every ingested object lands at a random place, stays in memory while an ingest writes;
#: - ``wal_autocheckpoint=20000``: the WAL is copied back into the database every 20,000 pages (about
#:   80 MB) instead of 1,000, so an index page rewritten by several ingests in a row is copied once.
SQLITE_PRAGMAS = {"journal_mode": "WAL", "synchronous": "NORMAL", "cache_size": -65536, "wal_autocheckpoint": 20000}


def _seconds(name: str, default: float) -> float:
    """A duration in seconds from the environment variable ``name`` (``default`` when unset)."""
    text = os.environ.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        raise InvalidArgumentError(f"{name}={text!r}: not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise InvalidArgumentError(f"{name}={text!r}: must be a finite number of seconds, 0 or more")
    return value


def database_settings(url: str | None, path: str | None) -> dict:
    """Django's ``DATABASES["default"]`` for a PostgreSQL URL, else a SQLite file."""
    if url:
        parts = urlparse(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise InvalidArgumentError(f"SXTSEG_CATALOG_URL {url!r}: only postgresql:// URLs are supported")
        return {"ENGINE": "django.db.backends.postgresql", "NAME": parts.path.lstrip("/") or "sxtseg",
                "USER": unquote(parts.username or ""), "PASSWORD": unquote(parts.password or ""),
                "HOST": parts.hostname or "", "PORT": str(parts.port or ""), "CONN_MAX_AGE": 60,
                "OPTIONS": {"connect_timeout": 10}}
    db = Path(path).expanduser() if path else data_dir() / "catalog.sqlite3"
    db.parent.mkdir(parents=True, exist_ok=True)
    init = "; ".join(f"PRAGMA {name}={value}" for name, value in SQLITE_PRAGMAS.items())
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db),
            "OPTIONS": {"timeout": 30, "init_command": init}}


def secret_key(folder: Path) -> str:
    """The environment's secret key, else the one stored (mode 0600) in ``folder/secret_key``, made on first use."""
    if os.environ.get("SXTSEG_CATALOG_SECRET_KEY"):
        return os.environ["SXTSEG_CATALOG_SECRET_KEY"]
    path = folder / "secret_key"
    if not path.exists():
        # written to a private temporary file and linked into place: two processes starting at once
        # agree on one key, and neither reads a half-written file
        temporary = folder / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
        try:
            os.link(temporary, path)  # fails if another process got there first: its key is kept
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()


DATABASES = {"default": database_settings(os.environ.get("SXTSEG_CATALOG_URL"), os.environ.get("SXTSEG_CATALOG_DB"))}
_KEY_FOLDER = Path(DATABASES["default"]["NAME"]).parent if "sqlite" in DATABASES["default"]["ENGINE"] else data_dir()
SECRET_KEY = secret_key(_KEY_FOLDER)
DEBUG = os.environ.get("SXTSEG_CATALOG_DEBUG") == "1"
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("SXTSEG_CATALOG_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")]
ANONYMOUS_READ = os.environ.get("SXTSEG_CATALOG_ANONYMOUS_READ") == "1"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "sxtseg.catalog.apps.CatalogConfig",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "sxtseg.catalog.statement_timeout.StatementTimeoutMiddleware",
]
ROOT_URLCONF = "sxtseg.catalog.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
WSGI_APPLICATION = "sxtseg.catalog.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("SXTSEG_CATALOG_STATIC_ROOT", str(_KEY_FOLDER / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/samples/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
WHITENOISE_USE_FINDERS = True  # static files straight from the apps: `catalog serve` needs no collectstatic

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["sxtseg.catalog.access.ReadMembersWriteAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend",
                                "rest_framework.filters.OrderingFilter"],
    "DEFAULT_RENDERER_CLASSES": ["sxtseg.catalog.api.renderers.OrjsonRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "sxtseg.catalog.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "sxtseg catalog API",
    "DESCRIPTION": "Samples (SXT cells, CT exams, chest X-rays), their analysis runs, summary measures and objects.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "sxtseg.catalog.api.schema_hooks.add_error_responses"],
}
#: Seconds one SQL statement of a web request may run on PostgreSQL (0: no limit); the web server processes
#: apply it (:func:`sxtseg.catalog.statement_timeout.limit_request_statements`), command-line ingest does not.
REQUEST_STATEMENT_TIMEOUT_S = _seconds("SXTSEG_CATALOG_STATEMENT_TIMEOUT_S", 30.0)
#: Rows one CSV/Parquet export may return; a larger request is refused with 400 (ask for less, or page).
EXPORT_MAX_ROWS = int(os.environ.get("SXTSEG_CATALOG_EXPORT_MAX_ROWS", "1000000"))
