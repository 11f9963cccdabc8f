"""The catalog: ingest rate, and query latency through the REST API against the same query in plain SQL.

For each database (SQLite in a fresh file; PostgreSQL in a throwaway cluster
that postgresql-common's ``pg_virtualenv -t`` starts on a loopback port, with
``fsync=on`` like a real server (``--pg-option``), or a fresh database on the
server of the libpq variables ``PGHOST``... when they are set), in a child
process of its own:

* **ingest**: ``sxtseg.catalog.ingest.add_many`` of 100 results folders of
  10,000 objects each (10^6 object rows) in one process, as ``sxtseg catalog
  add`` does: each folder in its own transaction; on PostgreSQL over ``--jobs``
  connections at once (default that of ``sxtseg catalog add``, 4), the next
  folder read and checked in a background thread meanwhile; on SQLite one
  folder after the other.  Reported: object rows per second = all rows / wall time of the
  whole ingest (reading and checking each folder included; writing the folders
  is not timed), the jobs, and the CPU time of the ingesting process.  The folders are variants of one real
  ``sxtseg run`` folder (a phantom cell): the same files (``summary.json``,
  ``objects.csv`` with every column ``sxtseg run`` writes, ``run.json``,
  ``quicklook.png``, the OME-Zarr linked), with 10,000 generated objects of
  realistic classes, sizes and positions and a summary that agrees with them,
  so each folder has its own content hash.
* **latency**: the database settled (PostgreSQL: ``VACUUM (ANALYZE)`` and a
  checkpoint, what autovacuum does within minutes of a bulk load; SQLite: a
  WAL checkpoint; its statistics are the ones ingest keeps up to date), gunicorn
  serves the catalog as docs/catalog.md deploys it (``-c
  python:sxtseg.catalog.gunicorn_config``, ``sxtseg.catalog.wsgi``, 4 sync
  workers by default) on 127.0.0.1; a second
  process (the client: one thread per client, one ``http.client`` connection
  per request, token authentication as a project member made by ``sxtseg
  catalog createuser``) sends, at 1 and at 16 concurrent clients (closed loop:
  each client sends its next request when its answer is in), the filtered
  object query ``/api/objects/?class_name=dmv&volume_um3__gte=0.02&page_size=100``
  (first page, 100 of ~140,000 matching rows) and the aggregate
  ``/api/aggregate/?measure=dmv_count&by=hours_post_infection,infection`` (the
  summary measure of the 100 runs of those 10^6 objects, grouped by condition:
  the API has no aggregate over object rows).  The same process runs the SQL
  the API itself runs for each (captured from Django: the page's ``SELECT``
  with its access check; the measure values' ``SELECT``) directly through
  psycopg 3 / sqlite3, one connection per client thread, no prepared
  statements (as Django): the floor.  Reported: p50 and p95 latency in ms and
  the ratios API / SQL.  Each API answer is checked against its SQL answer
  once before timing; every gunicorn worker answers each query before any
  timing.  A measurement stops early after 20 s (at least 2 requests per
  client): the slow SQLite object queries.  Extra, in SQL only: per-condition
  count and mean volume of the ~800,000 DMV rows, what an aggregate over
  object rows would cost at the floor (1 client only on SQLite).

Targets (issue text): ingest at least 200,000 object rows/s on PostgreSQL and
50,000 on SQLite; filtered query and aggregate p95 under 100 ms at 16 clients
on PostgreSQL.  The record has ``target_met`` for each.

    python benchmarks/bench_catalog.py > docs/benchmarks/bench_catalog.json   # full size, a few minutes
    python benchmarks/bench_catalog.py --quick     # 3 runs x 2,000 objects, few requests (CI), seconds
    python benchmarks/bench_catalog.py --only-ingest --databases sqlite   # the SQLite ingest alone
    python benchmarks/bench_catalog.py --only-ingest --databases postgresql --jobs 1   # one connection
    python benchmarks/bench_catalog.py --only-ingest --databases postgresql --server-floor   # and the server's floor

Prints one JSON record on stdout (progress on stderr).  PostgreSQL parts are
skipped, with the reason recorded, when neither ``PGHOST`` nor
``pg_virtualenv`` is there; ``--quick`` skips them unless ``--postgresql``
is given.  Every server, cluster and temporary folder it starts is removed at
the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

VOXEL_NM = 30.0
CELL_SHAPE = (256, 1024, 1024)  # voxels (z, y, x) of the generated cells the objects lie in
HOURS = (0.0, 6.0, 12.0, 24.0, 48.0)
OBJECTS_QUERY = {"class_name": "dmv", "volume_um3__gte": 0.02, "page_size": 100}
AGGREGATE_QUERY = {"measure": "dmv_count", "by": "hours_post_infection,infection"}
PROJECT = "bench"
USER = "bench"

# ---------------------------------------------------------------------------------------------------------------------
# the second process: HTTP and SQL clients, 1..N threads, closed loop

CLIENT = textwrap.dedent(r'''
    import http.client, json, math, sys, threading, time
    import numpy as np

    spec = json.loads(sys.stdin.read())
    db = spec["db"]
    if db["vendor"] == "postgresql":
        import psycopg

        def connect():  # no prepared statements: Django's psycopg cursors bind on the client and never prepare
            return psycopg.connect(db["conninfo"], autocommit=True, prepare_threshold=None)
    else:
        import sqlite3

        def connect():
            return sqlite3.connect(db["path"], timeout=30, check_same_thread=False)

    class Api:
        def __init__(self):
            self.headers = {"Authorization": "Token " + spec["token"], "Accept": "application/json"}

        def __call__(self, query):
            conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=120)
            try:
                conn.request("GET", query["url"], headers=self.headers)
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            if response.status != 200:
                raise RuntimeError(f"{query['url']}: HTTP {response.status}: {body[:300]!r}")
            return body

    class Sql:
        def __init__(self):
            self.conn = connect()

        def __call__(self, query):
            cursor = self.conn.cursor()
            cursor.execute(query["sql"], query["params"])
            return cursor.fetchall()

    def check(query):
        """The API answers what its SQL gives: the page's ids; each group's count and mean of the measure values."""
        api = json.loads(Api()(query))
        rows = Sql()(query)
        if query["kind"] == "objects":
            return [r["id"] for r in api["results"]] == [r[0] for r in rows[:len(api["results"])]] and len(rows) > 0
        groups = {}
        for value, *keys in rows:
            groups.setdefault(tuple(keys), []).append(value)
        got = {tuple(g[k] for k in query["group_by"]): (g["count"], g["mean"]) for g in api["groups"]}
        return len(got) > 0 and got.keys() == groups.keys() and all(
            got[k][0] == len(v) and math.isclose(got[k][1], float(np.mean(v)), rel_tol=1e-9) for k, v in groups.items())

    def measure(query, mode, clients, per_client, warmup):
        """Latencies (s) of clients x per_client requests, each client in its own thread after a warm-up."""
        start = threading.Barrier(clients + 1)
        times = [[] for _ in range(clients)]
        errors = []

        def client(i):
            try:
                call = Api() if mode == "api" else Sql()
                for _ in range(warmup):
                    call(query)
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(repr(exc))
                start.abort()
                return
            try:
                start.wait()
            except threading.BrokenBarrierError:
                return
            try:
                began = time.perf_counter()
                for k in range(per_client):
                    if k >= 2 and time.perf_counter() - began > spec["budget_s"]:  # a slow case: fewer requests
                        break
                    t0 = time.perf_counter()
                    call(query)
                    times[i].append(time.perf_counter() - t0)
            except Exception as exc:  # noqa: BLE001
                errors.append(repr(exc))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        try:
            start.wait()
        except threading.BrokenBarrierError:
            pass
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        if errors:
            raise RuntimeError(f"{query['name']} {mode} x{clients}: {errors[0]}")
        lat = np.concatenate([np.asarray(t) for t in times]) * 1000.0
        return {"requests": int(lat.size), "p50_ms": float(np.percentile(lat, 50)),
                "p95_ms": float(np.percentile(lat, 95)), "mean_ms": float(lat.mean()), "max_ms": float(lat.max()),
                "throughput_per_s": float(lat.size / wall)}

    out = {"checks": {}, "results": []}
    for query in spec["queries"]:
        if "url" in query:
            out["checks"][query["name"]] = check(query)
            # every gunicorn worker answers this query a few times before any timing (a worker's first request
            # imports and sets up much of Django and DRF: a second or so)
            measure(query, "api", max(spec["clients"]), 1, 0)
        for clients in query.get("clients", spec["clients"]):
            per_client = max(1, spec["requests"][str(clients)] // clients) if not query.get("few") else \
                max(1, spec["few_requests"][str(clients)] // clients)
            for mode in (("api", "sql") if "url" in query else ("sql",)):
                row = {"query": query["name"], "mode": mode, "clients": clients,
                       **measure(query, mode, clients, per_client, spec["warmup"])}
                print(json.dumps(row), file=sys.stderr, flush=True)
                out["results"].append(row)
    print(json.dumps(out))
''')

# ---------------------------------------------------------------------------------------------------------------------
# input: results folders


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        memory = int(open("/proc/meminfo").readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        memory = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": memory, "os": platform.platform(),
            "python": platform.python_version(), "load_average_at_start": list(os.getloadavg())}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("sxtseg", "django", "djangorestframework", "django-filter", "psycopg", "psycopg-binary", "gunicorn",
                 "numpy", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    import sqlite3

    out["sqlite"] = sqlite3.sqlite_version
    return out


def objects_table(rng: np.random.Generator, n: int):
    """``n`` rows with the columns and types of ``sxtseg run``'s objects.csv, for a large infected cell.

    One cytoplasm, one nucleus, three nucleoli; of the rest 15% mitochondria, 5% lipid droplets and 80%
    DMVs (300 +- 40 nm across), at uniform positions in a 256x1024x1024 cell of 30 nm voxels.
    """
    import pandas as pd

    fixed = 5
    class_id = np.concatenate([[1, 2, 3, 3, 3], rng.choice([4, 5, 6], size=n - fixed, p=[0.15, 0.05, 0.80])])
    diameter = np.empty(n)
    diameter[:fixed] = [12000.0, 6000.0, 900.0, 800.0, 700.0]
    mito, droplet, dmv = class_id == 4, class_id == 5, class_id == 6
    diameter[mito] = rng.lognormal(np.log(450.0), 0.25, mito.sum())
    diameter[droplet] = rng.lognormal(np.log(600.0), 0.2, droplet.sum())
    diameter[dmv] = np.clip(rng.normal(300.0, 40.0, dmv.sum()), 150.0, None)
    voxel_count = np.maximum(np.round(np.pi / 6 * (diameter / VOXEL_NM) ** 3), 1).astype(np.int64)
    volume = voxel_count * (VOXEL_NM / 1000.0) ** 3
    eq_diameter = (6 * volume / np.pi) ** (1 / 3) * 1000.0
    sphericity = np.clip(np.where(mito, rng.normal(0.7, 0.08, n), rng.normal(0.97, 0.02, n)), 0.3, 1.01)
    elongation = np.where(mito, rng.uniform(0.3, 0.7, n), rng.uniform(0.9, 1.0, n))
    flatness = elongation * rng.uniform(0.85, 1.0, n)
    major = eq_diameter / np.cbrt(elongation * flatness)
    shape = np.array(CELL_SHAPE)
    centroid = rng.uniform(0.1, 0.9, (n, 3)) * shape
    half = np.ceil(major[:, None] / VOXEL_NM / 2)
    lo = np.clip(np.floor(centroid - half), 0, shape - 1).astype(np.int64)
    hi = np.clip(np.ceil(centroid + half), 1, shape).astype(np.int64)
    eig = (major[:, None] * np.stack([np.ones(n), elongation, flatness], 1) / VOXEL_NM) ** 2 / 20.0
    lac = np.select([class_id == 5, class_id == 6, class_id == 4], [0.55, 0.31, 0.27], 0.22)
    mean = lac + rng.normal(0, 0.005, n)
    std = rng.uniform(0.01, 0.03, n)
    organelle = class_id >= 4
    return pd.DataFrame({
        "label": np.arange(1, n + 1, dtype=np.int64), "class_id": class_id.astype(np.int64),
        "voxel_count": voxel_count, "volume_um3": np.round(volume, 6),
        "surface_area_um2": np.pi * (eq_diameter / 1000.0) ** 2 / sphericity, "equivalent_diameter_nm": eq_diameter,
        "sphericity": sphericity, "principal_axis_major_nm": major, "principal_axis_mid_nm": major * elongation,
        "principal_axis_minor_nm": major * flatness, "elongation": elongation, "flatness": flatness,
        "centroid_z_vox": centroid[:, 0], "centroid_y_vox": centroid[:, 1], "centroid_x_vox": centroid[:, 2],
        "centroid_z_nm": centroid[:, 0] * VOXEL_NM, "centroid_y_nm": centroid[:, 1] * VOXEL_NM,
        "centroid_x_nm": centroid[:, 2] * VOXEL_NM,
        "bbox_z0": lo[:, 0], "bbox_y0": lo[:, 1], "bbox_x0": lo[:, 2],
        "bbox_z1": hi[:, 0], "bbox_y1": hi[:, 1], "bbox_x1": hi[:, 2],
        "inertia_eig_0": eig[:, 0], "inertia_eig_1": eig[:, 1], "inertia_eig_2": eig[:, 2],
        "intensity_mean": mean, "intensity_std": std, "intensity_min": mean - 3 * std,
        "intensity_max": mean + 3 * std,
        "touches_border": (lo == 0).any(1) | (hi == shape).any(1),
        "distance_to_nucleus_nm": np.where(organelle, rng.uniform(0.0, 6000.0, n), np.nan),
        "distance_to_cell_boundary_nm": rng.uniform(0.0, 4000.0, n),
        "nearest_neighbour_nm": np.where(organelle, rng.uniform(300.0, 2000.0, n), np.nan),
    })


def real_template(work: Path) -> Path:
    """One real results folder: ``sxtseg.run`` on a small phantom cell with the default model."""
    import sxtseg

    image, *_ = sxtseg.make_infected_cell(shape=(32, 96, 96), seed=1)
    image.metadata["source"] = {"path": "cell.mrc", "reader": "phantom"}
    sxtseg.run(image, work / "template", progress=False)
    return work / "template"


def synthetic_template(work: Path) -> Path:
    """For --quick: summary.json and run.json with the keys ``sxtseg run`` writes, without running the model."""
    folder = work / "template"
    folder.mkdir()
    summary = {"sample": "cell", "input": {"path": "cell.mrc", "shape": [32, 96, 96], "dtype": "float32"},
               "voxel_size": [VOXEL_NM] * 3, "unit": "nm", "model": {"name": "default", "sha256": "0" * 64},
               "sxtseg_version": "0.1.0", "calibration": {"method": "two-point", "input_kind": "lac", "scale": 1.0,
                                                          "offset": 0.0},
               "quality": [], "instances": {"dmv_min_distance_nm": 100.0, "dmv_min_diameter_nm": 180.0,
                                            "dmv_min_depth_nm": 0.0},
               "summary": {}, "objects": 0,
               "timings_s": {"open": 0.0, "calibrate": 0.06, "segment": 1.6, "instances": 1.0, "measure": 1.0,
                             "write": 0.5}}
    run = {"format": 1, "input": {"shape": [32, 96, 96], "dtype": "float32", "sample_sha256": "0" * 64},
           "model_sha256": "0" * 64, "parameters": {"block_shape": [128, 512, 512], "halo": [16, 32, 32]},
           "device": "cpu"}
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    (folder / "run.json").write_text(json.dumps(run, indent=1))
    return folder


def make_folder(args) -> str:
    """Results folder ``index``: the template's files with a generated objects table and its summary."""
    template, out, index, n, seed = args
    from sxtseg.classes import CLASS_NAMES

    template, out = Path(template), Path(out)
    out.mkdir(parents=True)
    table = objects_table(np.random.default_rng([seed, index]), n)
    table.to_csv(out / "objects.csv", index=False)
    summary = json.loads((template / "summary.json").read_text())
    name = f"cell{index:04d}"
    classes = {CLASS_NAMES[int(c)]: {"count": int(len(g)), "total_volume_um3": float(g["volume_um3"].sum()),
                                     "mean_volume_um3": float(g["volume_um3"].mean())}
               for c, g in table.groupby("class_id")}
    dmv = table[table["class_id"] == 6]
    cytoplasm = float(table.loc[table["class_id"] == 1, "volume_um3"].sum())
    summary.update(sample=name, objects=int(len(table)), input={**summary["input"], "path": f"{name}.mrc",
                                                                "shape": list(CELL_SHAPE)})
    summary["summary"] = {"classes": classes, "cytoplasm_volume_um3": cytoplasm, "dmv_count": int(len(dmv)),
                          "dmv_volume_fraction_of_cytoplasm": float(dmv["volume_um3"].sum() / cytoplasm),
                          "dmv_median_distance_to_nucleus_nm": float(dmv["distance_to_nucleus_nm"].median())}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    run = json.loads((template / "run.json").read_text())
    run["input"] = {**run.get("input", {}), "sample_sha256": f"{seed:016x}{index:048x}",
                    "file": {"path": f"{name}.mrc", "exists": False}}
    (out / "run.json").write_text(json.dumps(run, indent=1))
    if (template / "quicklook.png").exists():
        shutil.copy(template / "quicklook.png", out / "quicklook.png")
    if (template / "volume.ome.zarr").exists():  # the image is not read by ingest: linked, not copied
        (out / "volume.ome.zarr").symlink_to((template / "volume.ome.zarr").resolve())
    return str(out)


def conditions(index: int) -> dict:
    return {"cell_line": "VeroE6", "infection": "mock" if index % 4 == 3 else "infected",
            "hours_post_infection": HOURS[index % len(HOURS)], "replicate": 1 + index // 20}


# ---------------------------------------------------------------------------------------------------------------------
# one database: ingest, serve, measure (a child process: Django is configured once per process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_leftover_servers(pid_files) -> None:
    """SIGKILL the process group of each gunicorn pid file given (a server left by a phase that was killed)."""
    for pid_file in pid_files:
        try:
            os.killpg(int(Path(pid_file).read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError):  # gone already, or a file without a pid
            pass


def start_gunicorn(work: Path, name: str, workers: int, env: dict):
    """gunicorn serving the catalog on a free loopback port, once it accepts connections: (process, log, port).

    Its log is ``work/name.log``; the caller stops the process (:func:`_stop`) and closes the log.
    """
    port = free_port()
    log = open(work / f"{name}.log", "w")
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:sxtseg.catalog.gunicorn_config", "--workers",
         str(workers), "--bind", f"127.0.0.1:{port}", "--pid", str(work / f"{name}.pid"),
         "sxtseg.catalog.wsgi:application"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return gunicorn, log, port
        except OSError:
            if gunicorn.poll() is not None or time.time() > deadline:
                _stop(gunicorn)
                log.close()
                raise RuntimeError(f"gunicorn did not start: {(work / f'{name}.log').read_text()}") from None
            time.sleep(0.2)


def _queries(vendor: str, token: str, user_id: int) -> list[dict]:
    """The two API queries with the SQL the API runs for them (the floor), and the extra SQL-only aggregate.

    The SQL is captured from the API itself (one in-process request each, Django's executed statements): the
    query of the page (``LIMIT 101``: the cursor page looks one row ahead) and of the measure values; not the
    token lookup.
    """
    from urllib.parse import urlencode

    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    settings.ALLOWED_HOSTS.append("testserver")
    out = []
    for name, kind, path, table in (
            ("filtered_objects", "objects", "/api/objects/?" + urlencode(OBJECTS_QUERY), "catalog_catalogobject"),
            ("aggregate", "aggregate", "/api/aggregate/?" + urlencode(AGGREGATE_QUERY), "catalog_measure")):
        with CaptureQueriesContext(connection) as captured:
            response = APIClient().get(path, HTTP_AUTHORIZATION=f"Token {token}")
        assert response.status_code == 200, (path, response.status_code, response.content[:300])
        sql = [q["sql"] for q in captured.captured_queries if f'FROM "{table}"' in q["sql"]]
        assert len(sql) == 1, captured.captured_queries
        statement = sql[0]
        if statement.startswith("DECLARE "):  # .iterator() on PostgreSQL: a server-side cursor; its SELECT
            statement = statement[statement.index(" FOR SELECT ") + len(" FOR "):]
        query = {"name": name, "kind": kind, "url": path, "sql": statement, "params": [],
                 "server_side_cursor": statement != sql[0]}
        if kind == "aggregate":
            query["group_by"] = AGGREGATE_QUERY["by"].split(",")
        out.append(query)
    mark = "%s" if vendor == "postgresql" else "?"
    by = "s.hours_post_infection, s.infection"
    # on SQLite one such scan takes seconds: 16 at once would take about a minute, so only 1 client there
    out.append({"name": "object_aggregate_sql_only", "kind": "object_aggregate", "few": True,
                "params": [user_id, "dmv"], **({} if vendor == "postgresql" else {"clients": [1]}),
                "sql": f"SELECT {by}, count(*), avg(o.volume_um3) FROM catalog_catalogobject o "
                       "JOIN catalog_run r ON r.id = o.run_id JOIN catalog_sample s ON s.id = r.sample_id "
                       f"JOIN catalog_membership mb ON mb.project_id = s.project_id AND mb.user_id = {mark} "
                       f"WHERE o.class_name = {mark} GROUP BY {by} ORDER BY {by}"})
    return out


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def phase(vendor: str, spec: dict) -> dict:
    """Ingest the folders into a fresh database of ``vendor``, serve it with gunicorn, time the queries."""
    work = Path(spec["work"])
    (work / f"phase-{vendor}.pid").write_text(str(os.getpid()))
    env = {**os.environ, "SXTSEG_CATALOG_SECRET_KEY": "bench-" + os.urandom(16).hex(),
           "SXTSEG_CATALOG_STATIC_ROOT": str(work / "static"), "XDG_DATA_HOME": str(work / "xdg"),
           "SXTSEG_CATALOG_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    env.pop("SXTSEG_CATALOG_URL", None)
    env.pop("SXTSEG_CATALOG_DB", None)
    dropdb = None
    if vendor == "postgresql":
        from urllib.parse import quote

        import psycopg

        name = f"sxtseg_bench_{os.getpid()}"
        with psycopg.connect(dbname="postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
            user, host, port = admin.info.user, admin.info.host, admin.info.port
            server = {"server_version": admin.execute("SHOW server_version").fetchone()[0],
                      **{k: admin.execute(f"SHOW {k}").fetchone()[0] for k in (
                          "fsync", "synchronous_commit", "shared_buffers", "work_mem", "max_wal_size",
                          "max_parallel_workers_per_gather")}}
        password = os.environ.get("PGPASSWORD", "")
        url = f"postgresql://{quote(user)}:{quote(password)}@{host}:{port}/{name}"
        conninfo = f"host={host} port={port} user={user} dbname={name}" + (
            f" password={password}" if password else "")
        env["SXTSEG_CATALOG_URL"] = url

        def dropdb():
            with psycopg.connect(dbname="postgres", autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    else:
        path = work / "catalog.sqlite3"
        env["SXTSEG_CATALOG_DB"] = str(path)
        server = {}
    os.environ.update(env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated phase still stops its server below
    gunicorn = log = None
    try:
        from sxtseg.catalog import configure

        configure()
        from django.db import DatabaseError, connection

        from sxtseg.catalog.ingest import add_many, default_jobs, read_results
        from sxtseg.catalog.models import CatalogObject

        folders = spec["folders"]
        jobs = spec.get("jobs") or default_jobs()
        print(f"{vendor}: ingesting {len(folders)} folders (jobs {jobs})", file=sys.stderr, flush=True)
        load = os.getloadavg()[0]
        cpu0, machine0 = os.times(), machine_busy_seconds()
        started = time.perf_counter()
        # as `sxtseg catalog add` does: each folder read while the one before it is written, in its own
        # transaction; on PostgreSQL over `jobs` connections
        for folder, done in add_many(folders, PROJECT, conditions=conditions, jobs=jobs):
            assert done[0]["created"], folder
        ingest_s = time.perf_counter() - started
        cpu1, machine1 = os.times(), machine_busy_seconds()
        client_cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)  # this process, all its threads
        rows = CatalogObject.objects.count()
        assert rows == spec["rows"], (rows, spec["rows"])
        started = time.perf_counter()  # the part of it that is reading and checking the folders
        for folder in folders:
            read_results(folder)
        read_s = time.perf_counter() - started
        ingest = {"runs": len(folders), "object_rows": rows, "seconds": ingest_s, "rows_per_s": rows / ingest_s,
                  "jobs": jobs, "client_cpu_seconds": client_cpu_s, "machine_busy_cpu_seconds": machine1 - machine0,
                  "cpus": os.cpu_count(), "read_results_seconds": read_s,
                  "load_average_1min_before": load}
        print(f"{vendor}: {ingest}", file=sys.stderr, flush=True)
        if vendor == "postgresql" and spec.get("server_floor"):
            connection.close()
            ingest["server_floor"] = server_floor(conninfo, CatalogObject._meta.db_table, spec["rows"],
                                                  sorted({1, 2, jobs}))
            print(f"{vendor}: server floor {ingest['server_floor']}", file=sys.stderr, flush=True)
        # settle the database before the queries, so that no background work of the bulk load runs while they
        # are timed: on PostgreSQL what autovacuum does within a minute or two of it (vacuum and statistics), then a
        # checkpoint; on SQLite the WAL checkpoint (no ANALYZE of its own: ingest refreshes the statistics)
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("VACUUM (ANALYZE)")
                try:
                    cursor.execute("CHECKPOINT")  # superusers (and pg_checkpoint) only
                except DatabaseError:
                    pass
                cursor.execute("SELECT pg_database_size(current_database())")
                size = cursor.fetchone()[0]
            else:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        ingest["database_bytes"] = int(size)
        connection.close()
        if spec.get("only_ingest"):
            return {"vendor": vendor, "server": server, "ingest": ingest,
                    "latency": {"skipped": "--only-ingest"}}

        cli = [sys.executable, "-m", "sxtseg.cli", "catalog", "createuser", USER, "--project", PROJECT]
        made = subprocess.run(cli, env=env, capture_output=True, text=True, check=True)
        token = made.stdout.strip().splitlines()[-1]
        from django.contrib.auth import get_user_model

        user_id = get_user_model().objects.get(username=USER).pk
        connection.close()

        gunicorn, log, port = start_gunicorn(work, f"gunicorn-{vendor}", spec["workers"], env)
        client_spec = {"host": "127.0.0.1", "port": port, "token": token, "clients": spec["clients"],
                       "budget_s": spec["budget_s"],
                       "requests": spec["requests"], "few_requests": spec["few_requests"], "warmup": spec["warmup"],
                       "queries": _queries(vendor, token, user_id),
                       "db": {"vendor": vendor, "conninfo": conninfo} if vendor == "postgresql" else
                       {"vendor": vendor, "path": str(path)}}
        print(f"{vendor}: gunicorn on port {port} ({spec['workers']} workers); client process measuring",
              file=sys.stderr, flush=True)
        load = os.getloadavg()[0]
        done = subprocess.run([sys.executable, "-c", CLIENT], input=json.dumps(client_spec), env=env,
                              stdout=subprocess.PIPE, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"the client process failed (exit {done.returncode})")
        latency = json.loads(done.stdout.strip().splitlines()[-1])
        latency["load_average_1min_before"] = load
        latency["gunicorn_workers"] = spec["workers"]
        latency["queries"] = {q["name"]: {k: q[k] for k in ("url", "sql", "server_side_cursor") if k in q}
                              for q in client_spec["queries"]}
        return {"vendor": vendor, "server": server, "ingest": ingest, "latency": latency}
    finally:
        _stop(gunicorn)
        if log is not None:
            log.close()
        if dropdb is not None:
            from django.db import connections

            connections.close_all()
            dropdb()


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all processes, all cores) since boot."""
    import psutil

    times = psutil.cpu_times()  # Linux: guest time is inside user time, steal is the hypervisor's
    return float(times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0))


def server_floor(conninfo: str, table: str, rows: int, connections: list[int]) -> dict:
    """The server's own rate for the object rows just ingested: the floor of any client.

    The rows are copied aside (an unlogged table with an index on the run), the
    object table emptied, and then written back run by run, each run's rows by one
    ``INSERT ... SELECT`` in a transaction of its own (as ingest writes a folder),
    over 1, 2 and ``jobs`` connections at once: the same rows, into the same
    table with the same indexes and constraints, growing from empty as during
    ingest, with nothing for a client to read, check, pack or send.  The table
    ends as ingest left it (the same rows and ids).  Each measurement also
    records the CPU seconds the whole machine was busy (the server's work:
    the client threads only wait).
    """
    import threading

    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE UNLOGGED TABLE floor_rows AS SELECT * FROM {table}")
        conn.execute("CREATE INDEX ON floor_rows (run_id)")
        conn.execute("ANALYZE floor_rows")
        runs = [r for (r,) in conn.execute("SELECT DISTINCT run_id FROM floor_rows ORDER BY run_id")]
    results = []
    try:
        for n in connections:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f"TRUNCATE {table}")
                conn.execute("CHECKPOINT")
            queue, lock, errors = list(reversed(runs)), threading.Lock(), []

            def worker():
                try:
                    with psycopg.connect(conninfo) as conn:
                        while True:
                            with lock:
                                if not queue:
                                    return
                                run = queue.pop()
                            with conn.transaction():
                                conn.execute(f"INSERT INTO {table} SELECT * FROM floor_rows WHERE run_id = %s",
                                             (run,))
                except BaseException as error:  # noqa: BLE001 - reported below
                    errors.append(error)

            threads = [threading.Thread(target=worker) for _ in range(n)]
            busy, started = machine_busy_seconds(), time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds, busy = time.perf_counter() - started, machine_busy_seconds() - busy
            if errors:
                raise errors[0]
            with psycopg.connect(conninfo) as conn:
                count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert count == rows, (count, rows)
            results.append({"connections": n, "seconds": seconds, "rows_per_s": rows / seconds,
                            "machine_busy_cpu_seconds": busy})
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS floor_rows")
    return {"what": "INSERT ... SELECT of each run's object rows from an unlogged copy, a transaction per run, "
                    "into the emptied object table with its indexes", "results": results}


# ---------------------------------------------------------------------------------------------------------------------
# the orchestration


def run_phase(vendor: str, spec: dict, work: Path, pg_options: list[str]) -> dict:
    spec_path = work / f"spec-{vendor}.json"
    spec_path.write_text(json.dumps(spec))
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", vendor, str(spec_path)]
    env = dict(os.environ)
    if vendor == "postgresql" and not os.environ.get("PGHOST"):
        # -t: a cluster in a temporary folder (not /etc/postgresql/<v>/regress, which a test run may be using),
        # on a port of its own
        options = [x for o in pg_options for x in ("-o", o)]
        command = ["pg_virtualenv", "-t", *options, "--", *command]
        env["PGPORT"] = str(free_port())
    # its own session: an interrupt of this process reaches the phase only through _interrupt, which lets the
    # phase stop its server first and pg_virtualenv drop its cluster after
    process = subprocess.Popen(command, env=env, stdout=sys.stderr, start_new_session=True)
    try:
        returncode = process.wait(timeout=7200)
    except BaseException:
        _interrupt(process, work / f"phase-{vendor}.pid")
        raise
    if returncode != 0:
        raise RuntimeError(f"the {vendor} phase failed (exit {returncode}); its output is above")
    return json.loads(spec_path.with_suffix(".result.json").read_text())


def _interrupt(process: subprocess.Popen, pid_file: Path) -> None:
    """Stop a phase: SIGTERM to its Python process (it stops gunicorn, drops its database), then wait for the rest."""
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
    except (OSError, ValueError):  # not started yet, or gone
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    try:
        process.wait(timeout=60)  # pg_virtualenv drops its cluster once its command has ended
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def summarise(record: dict) -> dict:
    """Table rows: ingest rate and latencies API vs SQL per database, query and client count, with ratios."""
    table = {"ingest_rows_per_s": {}, "latency": []}
    for vendor, result in record["databases"].items():
        if "skipped" in result:
            continue
        table["ingest_rows_per_s"][vendor] = result["ingest"]["rows_per_s"]
        rows = result["latency"].get("results", [])
        for query in ("filtered_objects", "aggregate", "object_aggregate_sql_only"):
            for clients in record["parameters"]["clients"]:
                found = {r["mode"]: r for r in rows if r["query"] == query and r["clients"] == clients}
                if not found:
                    continue
                entry = {"database": vendor, "query": query, "clients": clients}
                for mode, r in found.items():
                    entry[f"{mode}_p50_ms"], entry[f"{mode}_p95_ms"] = r["p50_ms"], r["p95_ms"]
                if "api" in found:
                    entry["ratio_p50_api_over_sql"] = found["api"]["p50_ms"] / found["sql"]["p50_ms"]
                    entry["ratio_p95_api_over_sql"] = found["api"]["p95_ms"] / found["sql"]["p95_ms"]
                table["latency"].append(entry)
    return table


def targets(record: dict) -> dict:
    out = {}
    dbs = record["databases"]
    for vendor, goal in (("postgresql", 200_000), ("sqlite", 50_000)):
        result = dbs.get(vendor, {})
        measured = result.get("ingest", {}).get("rows_per_s")
        out[f"ingest_{vendor}_rows_per_s_at_least_{goal}"] = {
            "target": goal, "measured": measured, "target_met": None if measured is None else measured >= goal,
            **({"skipped": result["skipped"]} if "skipped" in result else {})}
    for query in ("filtered_objects", "aggregate"):
        rows = [r for r in dbs.get("postgresql", {}).get("latency", {}).get("results", [])
                if r["query"] == query and r["mode"] == "api" and r["clients"] == 16]
        measured = rows[0]["p95_ms"] if rows else None
        out[f"{query}_api_p95_ms_under_100_at_16_clients_postgresql"] = {
            "target": 100.0, "measured": measured, "target_met": None if measured is None else measured < 100.0}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs x 2,000 objects, few requests, SQLite (CI)")
    parser.add_argument("--runs", type=int, help="results folders (default 100, quick 3)")
    parser.add_argument("--objects", type=int, help="objects per folder (default 10,000, quick 2,000)")
    parser.add_argument("--requests", type=int, help="timed requests per query and client count (default 400, "
                                                     "quick 16)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--postgresql", action=argparse.BooleanOptionalAction, default=None,
                        help="measure PostgreSQL too (default: yes when PGHOST or pg_virtualenv is there, "
                             "no with --quick)")
    parser.add_argument("--pg-option", action="append", default=None,
                        help="postgresql.conf setting of the throwaway cluster (default: fsync=on, as a real "
                             "server; pg_virtualenv alone turns fsync off)")
    parser.add_argument("--only-ingest", action="store_true",
                        help="measure the ingest only (no server, no queries)")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated databases to measure, of sqlite and postgresql (default both)")
    parser.add_argument("--jobs", type=int, help="ingest: connections written over at once, as `sxtseg catalog add "
                                                 "--jobs` (default: its default, 4 on PostgreSQL; SQLite: 1)")
    parser.add_argument("--server-floor", action="store_true",
                        help="PostgreSQL: after the ingest, time the server writing the same rows itself "
                             "(INSERT ... SELECT per run, 1, 2 and --jobs connections): the ingest's floor")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--phase", nargs=2, metavar=("VENDOR", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        vendor, spec = args.phase
        result = phase(vendor, json.loads(Path(spec).read_text()))
        Path(spec).with_suffix(".result.json").write_text(json.dumps(result))  # pg_virtualenv talks on stdout
        return result

    databases = {d.strip() for d in args.databases.split(",") if d.strip()}
    if not databases or databases - {"sqlite", "postgresql"}:
        parser.error(f"--databases {args.databases!r}: a comma-separated list of sqlite and postgresql")
    runs = args.runs or (3 if args.quick else 100)
    n = args.objects or (2_000 if args.quick else 10_000)
    requests = args.requests or (16 if args.quick else 400)
    pg_options = args.pg_option if args.pg_option is not None else ["fsync=on"]
    # requests per query and client count (the object aggregate: fewer); a measurement stops early after
    # budget_s seconds (at least 2 requests per client): the slow SQLite object queries
    counts = {"requests": {"1": max(1, requests // 2), "16": requests},
              "few_requests": {"1": 4 if args.quick else 10, "16": 16 if args.quick else 32},
              "warmup": 1 if args.quick else 3, "budget_s": 5 if args.quick else 20}
    record = {"benchmark": "bench_catalog", "quick": args.quick, "machine": machine(), "versions": versions(),
              "parameters": {"runs": runs, "objects_per_run": n, "object_rows": runs * n, "clients": [1, 16],
                             **counts, "gunicorn_workers": args.workers, "objects_query": OBJECTS_QUERY,
                             "aggregate_query": AGGREGATE_QUERY, "seed": args.seed,
                             "only_ingest": args.only_ingest, "databases": sorted(databases), "jobs": args.jobs,
                             "server_floor": args.server_floor},
              "databases": {}}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # terminated: still clean up below
    work = Path(tempfile.mkdtemp(prefix="sxtseg-bench-catalog-"))
    try:
        started = time.perf_counter()
        template = synthetic_template(work) if args.quick else real_template(work)
        record["parameters"]["template"] = "synthetic (--quick)" if args.quick else \
            "sxtseg.run on make_infected_cell((32, 96, 96), seed=1), default model"
        jobs = [(str(template), str(work / "folders" / f"cell{i:04d}"), i, n, args.seed) for i in range(runs)]
        if runs > 4:
            with ProcessPoolExecutor(os.cpu_count()) as pool:
                folders = list(pool.map(make_folder, jobs, chunksize=4))
        else:
            folders = [make_folder(job) for job in jobs]
        record["parameters"]["folder_bytes"] = sum(f.stat().st_size for f in (work / "folders").rglob("*")
                                                   if f.is_file())
        print(f"{runs} folders of {n} objects in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        spec = {"work": str(work), "folders": folders, "rows": runs * n, "workers": args.workers, "jobs": args.jobs,
                "clients": [1, 16], "only_ingest": args.only_ingest, "server_floor": args.server_floor, **counts}
        if "sqlite" in databases:
            record["databases"]["sqlite"] = run_phase("sqlite", spec, work, pg_options)
        else:
            record["databases"]["sqlite"] = {"skipped": "not in --databases"}
        use_pg = args.postgresql if args.postgresql is not None else not args.quick
        if "postgresql" not in databases:
            record["databases"]["postgresql"] = {"skipped": "not in --databases"}
        elif not use_pg:
            record["databases"]["postgresql"] = {"skipped": "not asked for (--quick without --postgresql)"
                                                 if args.quick else "--no-postgresql"}
        elif not os.environ.get("PGHOST") and shutil.which("pg_virtualenv") is None:
            record["databases"]["postgresql"] = {
                "skipped": "no PostgreSQL: PGHOST is not set and pg_virtualenv (postgresql-common) is not installed"}
        else:
            record["databases"]["postgresql"] = run_phase("postgresql", spec, work, pg_options)
            if not os.environ.get("PGHOST"):
                record["databases"]["postgresql"]["server"]["cluster"] = (
                    f"pg_virtualenv -t {' '.join('-o ' + o for o in pg_options)}".strip())
    finally:
        kill_leftover_servers(work.glob("gunicorn-*.pid"))
        shutil.rmtree(work, ignore_errors=True)
    record["table"] = summarise(record)
    record["targets"] = targets(record)
    record["seconds"] = time.perf_counter() - started
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
