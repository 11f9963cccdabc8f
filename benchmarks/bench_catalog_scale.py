"""The catalog at scale: 10^8 object rows on PostgreSQL, loaded in SQL, then queried through the REST API.

Issue 15 asks that the catalog stay usable with 10^4-10^5 objects per cell and 10^3 cells, 10^8
object rows on PostgreSQL.  ``benchmarks/bench_catalog.py`` measures ingest and latency at 10^6
rows through ``sxtseg catalog add``; at 10^8 that ingest would take hours, so this benchmark
fills the database in SQL instead and measures what a 10^8-row catalog costs and answers:

1. **Schema**: a fresh database (in a throwaway cluster that postgresql-common's
   ``pg_virtualenv -t`` starts, with ``fsync=on`` and the ``--pg-option`` settings; or on the
   server of ``--url`` / the libpq variables ``PGHOST``...), the tables made by the project's
   shipped migrations (``sxtseg.catalog.configure``).  ``--rows / --objects-per-run`` samples
   (default 1,000: issue 15's 10^3 cells of 10^5 objects) with one run each, conditions as
   bench_catalog's (5 time points x infected/mock, replicates), run provenance as ``sxtseg run``
   writes it.  Projects: ``bench`` holds them, but every 100th sample belongs to ``other`` (1% of
   the rows, spread through the table) and the last one to ``newest`` (a project begun after all
   the other rows).  Users made by ``sxtseg catalog createuser`` (their tokens): ``bench``, a
   member of ``bench`` only (so the access check filters rows), and the owners of the other two.
2. **Load**: the object rows made by the server itself, ``INSERT ... SELECT ... FROM
   generate_series(...)`` in batches of about ``--batch-rows`` (default 4,000,000) rows, whole
   runs per batch, over ``--jobs`` connections (default 2); each run has 20-180% of
   ``--objects-per-run`` objects (default 100,000: 20,000-180,000 per cell).  The rows follow
   bench_catalog's generated ``objects.csv``: one cytoplasm, one nucleus and three nucleoli per
   cell, then 15% mitochondria (lognormal 450 nm across), 5% lipid droplets (lognormal 600 nm)
   and 80% DMVs (300 +- 40 nm), voxel counts of 30 nm voxels, volumes rounded to 6 decimals,
   sphericity, principal axes, LAC statistics, distances (none for the compartments), uniform
   centroids in a 256x1024x1024-voxel cell and the bounding boxes around them in nm.  The same
   statement writes each run's summary measures (``dmv_count``, ``<class>_count``,
   ``<class>_total_volume_um3``, ``<class>_mean_volume_um3``, ``cytoplasm_volume_um3``,
   ``dmv_volume_fraction_of_cytoplasm``, ``dmv_median_distance_to_nucleus_nm``, as ingest
   stores them) from the rows it inserted, so that the measures agree with the rows.
   ``--index-mode after`` (default): the object table's indexes, primary key and foreign key
   (every one the migrations made, read from the catalog first) are dropped before the load
   and made again after it, each timed; the end state is checked to have the same definitions.
   ``--index-mode during``: loaded with them in place.  The load stops early, and is reported
   so, when the free disk space of the database's file system would go below ``--min-free-gb``
   (default 10) with the indexes still to be built.
3. **Settle and size**: ``VACUUM (ANALYZE)`` and a checkpoint, timed; the sizes of the object
   table, its indexes (each), the other tables and the database.
4. **Latency**: gunicorn serves the catalog as bench_catalog does (``-c
   python:sxtseg.catalog.gunicorn_config``, 4 sync workers); a client process (bench_catalog's
   closed-loop client: one thread per client, a new connection per request, token
   authentication) sends each query at 1 and 16 clients, and runs the SQL the API runs for it
   (captured from Django in-process, as bench_catalog does) directly through psycopg: the floor.
   The queries: the filtered object query ``/api/objects/?class_name=dmv&volume_um3__gte=0.02
   &page_size=100`` (first page); its 6th page (``next`` followed 5 times); the same first page
   for the owners of ``other`` and of ``newest``; a page in the middle of the table (a cursor at
   the median id, what following ``next`` some 100,000 times reaches); the first page of one run
   (``?run=...&page_size=100``, all its objects), and the filtered query restricted to one run
   (``&run=``) and to one sample (``&sample=``), a run three quarters of the way into the table;
   newest first (``&ordering=-id``: the object list
   orders by id only, no numeric column); the aggregate
   ``/api/aggregate/?measure=dmv_count&by=hours_post_infection,infection``; the CSV export of one
   run (``?run=...&export=csv``, all columns, under the export limit) and of the filtered query
   (over the limit ``SXTSEG_CATALOG_EXPORT_MAX_ROWS``: a 400 after counting); and, in SQL only at
   1 client, bench_catalog's aggregate over all DMV rows.  Each API answer is checked against its
   SQL once; the first answer of each (the cache as the load left it) is reported too.  A query
   whose first answer, or p95 at 1 client, takes more than ``--slow-ms`` (default 5 s) is not
   measured at 16 clients (recorded as skipped: minutes of a saturated machine); one whose API
   request fails (gunicorn kills a worker after 30 s) has its SQL timed at 1 client only.
   ``EXPLAIN (ANALYZE, BUFFERS)`` of every captured statement is kept in the record (before the
   timing, and again after it unless it took more than ``--slow-ms``).
   ``record["usable"]``: per query, p95 at 1 client under 1 s and no sequential scan of the
   object table in its plan.

Prints one JSON record on stdout (progress on stderr).  Every server, cluster and temporary
folder it starts is removed at the end, also on failure; the database too, unless ``--keep-db``.

    python benchmarks/bench_catalog_scale.py > docs/benchmarks/bench_catalog_scale.json   # 10^8 rows, ~1 h
    python benchmarks/bench_catalog_scale.py --quick          # 20,000 rows, 20 runs, few requests: < 1 min
    python benchmarks/bench_catalog_scale.py --rows 10000000 --index-mode during --load-only   # load with indexes
    # a server of your own, keeping the loaded database; then, after a schema change, measure it again:
    # the new migrations run on the loaded rows (timed as migrate_s), nothing is loaded
    python benchmarks/bench_catalog_scale.py --url postgresql://u:p@localhost:5432/postgres --keep-db
    python benchmarks/bench_catalog_scale.py --url postgresql://u:p@localhost:5432/postgres --reuse-db NAME

With ``--url`` the database is made (or reused) on that server; its ``dbname`` is only used to
connect for ``CREATE DATABASE``.  Without ``--url``, ``PGHOST`` (and the other libpq
variables) name the server; without them a throwaway cluster is started.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_catalog  # noqa: E402 - the machine, versions, conditions, client and SQL capture of the 10^6 benchmark
from bench_catalog import (AGGREGATE_QUERY, CELL_SHAPE, OBJECTS_QUERY, PROJECT, USER, VOXEL_NM,  # noqa: E402
                           _interrupt, _stop, conditions, free_port, machine, start_gunicorn, versions)

OTHER_PROJECT = "other"  # every 100th sample: rows the measuring user may not see
STRANGER = "stranger"  # owner of that project
NEWEST_PROJECT = "newest"  # the last sample: a project begun after all the others' rows
NEWCOMER = "newcomer"  # owner of that project
DEFAULT_PG_OPTIONS = ["fsync=on", "shared_buffers=4GB", "max_wal_size=4GB"]
LIMIT_1_CLIENT_P95_MS = 1000.0  # "usable": p95 at 1 client under a second, and no sequential scan in the plan

# ---------------------------------------------------------------------------------------------------------------------
# the client: bench_catalog's (its connect(), Api, Sql, check() and closed-loop measure()), extended

_PREFIX, _MARK, _ = bench_catalog.CLIENT.partition('\nout = {"checks": {}, "results": []}\n')
assert _MARK, "bench_catalog.CLIENT changed: its main loop is no longer where this benchmark expects it"
CLIENT = _PREFIX + textwrap.dedent(r'''
    import csv, io

    _check_page_or_groups = check  # bench_catalog's: a page's ids, or an aggregate's groups, against the SQL


    class Api(Api):
        """bench_catalog's, expecting the query's status (the export over its limit answers 400), as its user."""

        def __call__(self, query):
            headers = {**self.headers, "Authorization": "Token " + query.get("token", spec["token"])}
            conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=600)
            try:
                conn.request("GET", query["url"], headers=headers)
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            if response.status != query.get("status", 200):
                raise RuntimeError(f"{query['url']}: HTTP {response.status}: {body[:300]!r}")
            return body


    class Sql(Sql):
        """bench_catalog's, for one statement or a list of them (the export: its count, then its rows)."""

        def __call__(self, query):
            statements = query["sql"] if isinstance(query["sql"], list) else [query["sql"]]
            cursor = self.conn.cursor()
            out = []
            for statement in statements:
                cursor.execute(statement, query["params"])
                out.append(cursor.fetchall())
            return out if isinstance(query["sql"], list) else out[0]


    def check(query):
        """The API answers what its SQL gives; returns (ok, bytes of the answer)."""
        body = Api()(query)
        if query["kind"] in ("objects", "aggregate"):
            return _check_page_or_groups(query), len(body)
        results = Sql()(query)
        count = results[0][0][0]  # the export's first statement: its size check, a count of up to limit + 1 rows
        if query["kind"] == "export_over_limit":
            return count > spec["export_limit"] and b"more than" in body, len(body)
        rows = results[1]
        table = list(csv.reader(io.StringIO(body.decode())))
        return (count == len(rows) == len(table) - 1 and table[0][0] == "id"
                and [int(r[0]) for r in table[1:]] == [r[0] for r in rows]), len(body)


    out = {"checks": {}, "first_ms": {}, "bytes": {}, "results": [], "errors": [], "skipped": []}
    for query in spec["queries"]:
        name, slow, api_failed = query["name"], False, False
        if "url" in query:
            t0 = time.perf_counter()
            try:
                Api()(query)  # the first answer: the cache as the load left it
                out["first_ms"][name] = (time.perf_counter() - t0) * 1000.0
                out["checks"][name], out["bytes"][name] = check(query)
                slow = out["first_ms"][name] > spec["slow_ms"]
                print(f"{name}: first {out['first_ms'][name]:.0f} ms, check {out['checks'][name]}",
                      file=sys.stderr, flush=True)
                if not slow:  # every gunicorn worker answers this query before any timing
                    measure(query, "api", max(query.get("clients", spec["clients"])), 1, 0)
            except Exception as exc:  # noqa: BLE001 - e.g. gunicorn's worker timeout: recorded, the SQL still timed
                api_failed = slow = True
                out["errors"].append({"query": name, "mode": "api", "after_ms": (time.perf_counter() - t0) * 1000.0,
                                      "error": repr(exc)[:1000]})
                print(f"{name}: {exc!r} after {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        for clients in query.get("clients", spec["clients"]):
            per_client = max(1, query["requests"][str(clients)] // clients)
            for mode in (("api", "sql") if "url" in query else ("sql",)):
                one = [r for r in out["results"] if r["query"] == name and r["mode"] == mode and r["clients"] == 1]
                if mode == "api" and api_failed:
                    out["skipped"].append({"query": name, "mode": mode, "clients": clients,
                                           "reason": "its first request failed (see errors)"})
                    continue
                if clients > 1 and (api_failed or (one and one[0]["p95_ms"] > spec["slow_ms"])):
                    # 16 clients of a query that takes seconds alone: minutes of a saturated machine; not measured
                    out["skipped"].append({"query": name, "mode": mode, "clients": clients,
                                           "reason": "its first API request failed (see errors)" if api_failed
                                           else f"p95 at 1 client over {spec['slow_ms']:.0f} ms"})
                    continue
                try:
                    warmup = 0 if slow else query.get("warmup", spec["warmup"])
                    row = {"query": name, "mode": mode, "clients": clients,
                           **measure(query, mode, clients, per_client, warmup)}
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by gunicorn's timeout
                    out["errors"].append({"query": name, "mode": mode, "clients": clients, "error": repr(exc)[:1000]})
                    print(f"{name} {mode} x{clients}: {exc!r}", file=sys.stderr, flush=True)
                    continue
                print(json.dumps(row), file=sys.stderr, flush=True)
                out["results"].append(row)
    print(json.dumps(out))
''')

# ---------------------------------------------------------------------------------------------------------------------
# the object rows, made by the server: bench_catalog.objects_table's distributions in SQL

CLASS_NAMES_SQL = ("CASE class_id WHEN 1 THEN 'cytoplasm' WHEN 2 THEN 'nucleus' WHEN 3 THEN 'nucleolus' "
                   "WHEN 4 THEN 'mitochondrion' WHEN 5 THEN 'lipid_droplet' ELSE 'dmv' END")
_Z, _Y, _X = CELL_SHAPE
_V3 = (VOXEL_NM / 1000.0) ** 3  # um^3 per voxel

# One batch: whole runs, (run_id, objects, first object id) as three arrays.  Levels: the random numbers of a
# row (OFFSET 0: computed once per row, not once per use); its class and three normal deviates (Box-Muller);
# diameter and shape; voxel count and volume; the columns.  Each level fenced by OFFSET 0 so its values are
# computed once.
OBJECT_COLUMNS_SQL = ("id, run_id, project_id, label, class_id, class_name, voxel_count, volume_um3, surface_area_um2, "
                      "equivalent_diameter_nm, sphericity, principal_axis_major_nm, principal_axis_mid_nm, "
                      "principal_axis_minor_nm, elongation, flatness, intensity_mean, intensity_std, "
                      "distance_to_nucleus_nm, distance_to_cell_boundary_nm, nearest_neighbour_nm, "
                      "centroid_z_nm, centroid_y_nm, centroid_x_nm, bbox_z0_nm, bbox_y0_nm, bbox_x0_nm, "
                      "bbox_z1_nm, bbox_y1_nm, bbox_x1_nm, touches_border")
LOAD_SQL = f"""
WITH ins AS (
  INSERT INTO catalog_catalogobject ({OBJECT_COLUMNS_SQL})
  SELECT id, run_id, project_id, label, class_id, {CLASS_NAMES_SQL}, voxel_count, volume_um3,
         pi() * (eqd / 1000.0) ^ 2 / sphericity, eqd, sphericity, major, major * elongation, major * flatness,
         elongation, flatness, lac + 0.005 * zi, 0.01 + 0.02 * u10,
         CASE WHEN class_id >= 4 THEN 6000.0 * u11 END, 4000.0 * u12,
         CASE WHEN class_id >= 4 THEN 300.0 + 1700.0 * u13 END,
         cz * {VOXEL_NM}, cy * {VOXEL_NM}, cx * {VOXEL_NM},
         z0 * {VOXEL_NM}, y0 * {VOXEL_NM}, x0 * {VOXEL_NM}, z1 * {VOXEL_NM}, y1 * {VOXEL_NM}, x1 * {VOXEL_NM},
         z0 = 0 OR y0 = 0 OR x0 = 0 OR z1 = {_Z} OR y1 = {_Y} OR x1 = {_X}
  FROM (
    SELECT *, least(greatest(floor(cz - half), 0), {_Z - 1}) AS z0,
           least(greatest(floor(cy - half), 0), {_Y - 1}) AS y0, least(greatest(floor(cx - half), 0), {_X - 1}) AS x0,
           least(greatest(ceil(cz + half), 1), {_Z}) AS z1,
           least(greatest(ceil(cy + half), 1), {_Y}) AS y1, least(greatest(ceil(cx + half), 1), {_X}) AS x1
    FROM (
      SELECT *, eqd / cbrt(elongation * flatness) AS major,
             ceil(eqd / cbrt(elongation * flatness) / {VOXEL_NM} / 2) AS half
      FROM (
        SELECT *, cbrt(6.0 * volume_um3 / pi()) * 1000.0 AS eqd
        FROM (
          SELECT *, round(voxel_count * {_V3!r} * 1e6) / 1e6 AS volume_um3
          FROM (
            SELECT id, run_id, project_id, label, class_id, zi, u10, u11, u12, u13,
                   greatest(round(pi() / 6.0 * (diameter / {VOXEL_NM}) ^ 3), 1)::bigint AS voxel_count,
                   least(greatest(CASE WHEN class_id = 4 THEN 0.7 + 0.08 * zs ELSE 0.97 + 0.02 * zs END, 0.3), 1.01)
                     AS sphericity,
                   elongation, elongation * (0.85 + 0.15 * u4) AS flatness,
                   CASE class_id WHEN 5 THEN 0.55 WHEN 6 THEN 0.31 WHEN 4 THEN 0.27 ELSE 0.22 END::float8 AS lac,
                   (0.1 + 0.8 * u5) * {_Z} AS cz, (0.1 + 0.8 * u6) * {_Y} AS cy, (0.1 + 0.8 * u7) * {_X} AS cx
            FROM (
              SELECT *, CASE class_id WHEN 1 THEN 12000.0::float8 WHEN 2 THEN 6000.0
                                      WHEN 3 THEN (ARRAY[900.0, 800.0, 700.0]::float8[])[(label - 2)::int]
                                      WHEN 4 THEN exp(ln(450.0) + 0.25 * zd) WHEN 5 THEN exp(ln(600.0) + 0.2 * zd)
                                      ELSE greatest(300.0 + 40.0 * zd, 150.0) END AS diameter,
                        CASE WHEN class_id = 4 THEN 0.3 + 0.4 * u3 ELSE 0.9 + 0.1 * u3 END AS elongation
              FROM (
                SELECT id, run_id, project_id, label,
                       CASE WHEN label <= 5 THEN (ARRAY[1, 2, 3, 3, 3])[label::int]
                            WHEN uc < 0.15 THEN 4 WHEN uc < 0.20 THEN 5 ELSE 6 END::smallint AS class_id,
                       sqrt(-2.0 * ln(u1)) * cos(2.0 * pi() * u2) AS zd,
                       sqrt(-2.0 * ln(u1)) * sin(2.0 * pi() * u2) AS zs,
                       sqrt(-2.0 * ln(u8)) * cos(2.0 * pi() * u9) AS zi, u3, u4, u5, u6, u7, u10, u11, u12, u13
                FROM (
                  SELECT r.first_id + g.label - 1 AS id, r.run_id, s.project_id, g.label, random() AS uc,
                         1.0 - random() AS u1,
                         random() AS u2, random() AS u3, random() AS u4, random() AS u5, random() AS u6,
                         random() AS u7, 1.0 - random() AS u8, random() AS u9, random() AS u10, random() AS u11,
                         random() AS u12, random() AS u13
                  FROM unnest(%(runs)s::bigint[], %(counts)s::bigint[], %(first)s::bigint[]) AS r(run_id, n, first_id)
                  JOIN catalog_run AS cr ON cr.id = r.run_id JOIN catalog_sample AS s ON s.id = cr.sample_id
                  CROSS JOIN LATERAL generate_series(1::bigint, r.n) AS g(label)
                  OFFSET 0) a OFFSET 0) b OFFSET 0) c OFFSET 0) d OFFSET 0) e OFFSET 0) f OFFSET 0) h OFFSET 0) k
  RETURNING run_id, class_id, volume_um3, distance_to_nucleus_nm),
per_class AS (
  SELECT run_id, {CLASS_NAMES_SQL} AS class_name, count(*) AS n, sum(volume_um3) AS total, avg(volume_um3) AS mean
  FROM ins GROUP BY run_id, class_id),
per_run AS (
  SELECT run_id, sum(volume_um3) FILTER (WHERE class_id = 1) AS cytoplasm, count(*) FILTER (WHERE class_id = 6) AS dmvs,
         sum(volume_um3) FILTER (WHERE class_id = 6) AS dmv_volume,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY distance_to_nucleus_nm) FILTER (WHERE class_id = 6) AS dmv_median
  FROM ins GROUP BY run_id)
INSERT INTO catalog_measure (run_id, name, value, unit)
SELECT run_id, class_name || '_' || key, value, unit
FROM per_class CROSS JOIN LATERAL (VALUES ('count', n::float8, ''), ('total_volume_um3', total, 'um3'),
                                          ('mean_volume_um3', mean, 'um3')) AS v(key, value, unit)
WHERE class_name <> 'dmv' OR key <> 'count'
UNION ALL
SELECT run_id, name, value, unit
FROM per_run CROSS JOIN LATERAL (VALUES ('cytoplasm_volume_um3', cytoplasm, 'um3'), ('dmv_count', dmvs::float8, ''),
                                        ('dmv_volume_fraction_of_cytoplasm', dmv_volume / cytoplasm, ''),
                                        ('dmv_median_distance_to_nucleus_nm', dmv_median, 'nm')) AS v(name, value, unit)
"""


def object_counts(runs: int, rows: int, seed: int) -> np.ndarray:
    """Objects per run: uniform in 20-180% of the mean, scaled to sum to ``rows`` (at least 6: the compartments)."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.2, 1.8, runs)
    counts = np.maximum(np.floor(weights / weights.sum() * rows).astype(np.int64), 6)
    counts[np.argsort(-counts)[: abs(rows - counts.sum())]] += np.sign(rows - counts.sum())
    assert counts.sum() == rows and counts.min() >= 6, (counts.sum(), rows)
    return counts


def batches(run_ids: list[int], counts: np.ndarray, batch_rows: int) -> list[dict]:
    """Whole runs per batch, about ``batch_rows`` rows each; object ids numbered run after run from 1."""
    first = np.concatenate([[1], 1 + np.cumsum(counts)[:-1]])
    out, current = [], {"runs": [], "counts": [], "first": []}
    for run, n, f in zip(run_ids, counts.tolist(), first.tolist()):
        current["runs"].append(run)
        current["counts"].append(n)
        current["first"].append(f)
        if sum(current["counts"]) >= batch_rows:
            out.append(current)
            current = {"runs": [], "counts": [], "first": []}
    if current["runs"]:
        out.append(current)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# the phase: one process, Django configured on the database (under pg_virtualenv when it makes the cluster)


def _scalar(conn, sql, params=None):
    return conn.execute(sql, params).fetchone()[0]


def _schema(conn) -> dict:
    """The object table's indexes (definition, and the constraint each backs) and its constraints."""
    indexes = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid), con.conname FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid "
        "AND con.conrelid = i.indrelid WHERE i.indrelid = 'catalog_catalogobject'::regclass ORDER BY 1").fetchall()
    constraints = conn.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'catalog_catalogobject'::regclass ORDER BY 1").fetchall()
    return {"indexes": [{"name": n, "definition": d, "constraint": c} for n, d, c in indexes],
            "constraints": [{"name": n, "type": t, "definition": d} for n, t, d in constraints]}


def _free_bytes(conn) -> int | None:
    try:
        return shutil.disk_usage(_scalar(conn, "SHOW data_directory")).free
    except Exception:  # noqa: BLE001 - not a superuser, or another machine: not checked
        return None


def _sizes(conn) -> dict:
    per_index = dict(conn.execute(
        "SELECT c.relname, pg_relation_size(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'catalog_catalogobject'::regclass ORDER BY 1").fetchall())
    tables = dict(conn.execute(
        "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'catalog_%' "
        "ORDER BY 1").fetchall())
    # object_rows: the planner's count after VACUUM (ANALYZE) (reltuples), not a count(*) of 10^8 rows
    return {"object_rows": _scalar(conn, "SELECT reltuples::bigint FROM pg_class "
                                          "WHERE relname = 'catalog_catalogobject'"),
            "object_table_bytes": _scalar(conn, "SELECT pg_relation_size('catalog_catalogobject')"),
            "object_indexes_bytes": _scalar(conn, "SELECT pg_indexes_size('catalog_catalogobject')"),
            "object_total_bytes": _scalar(conn, "SELECT pg_total_relation_size('catalog_catalogobject')"),
            "object_index_bytes": per_index, "catalog_tables_total_bytes": tables,
            "database_bytes": _scalar(conn, "SELECT pg_database_size(current_database())")}


def _explain(conninfo: str, statements: list[str]) -> list[dict]:
    import psycopg

    out = []
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as conn:
        for statement in statements:
            lines = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement).fetchall()]
            execution = next((float(line.split(":")[1].split()[0]) for line in lines
                              if line.startswith("Execution Time:")), None)
            out.append({"plan": lines, "execution_ms": execution,
                        "seq_scan_on_objects": any("Seq Scan on catalog_catalogobject" in line for line in lines)})
    return out


def _capture(client, path: str, token: str, status: int = 200) -> tuple[bytes, list[str]]:
    """The answer of ``path`` in-process and the object/measure statements it ran (their SELECTs), as bench_catalog."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, HTTP_AUTHORIZATION=f"Token {token}")
        body = b"".join(response.streaming_content) if response.streaming else response.content
    assert response.status_code == status, (path, response.status_code, body[:300])
    statements = []
    for query in captured.captured_queries:
        sql = query["sql"]
        if 'FROM "catalog_catalogobject"' not in sql and 'FROM "catalog_measure"' not in sql:
            continue
        if sql.startswith("DECLARE "):  # .iterator() on PostgreSQL: a server-side cursor; its SELECT
            sql = sql[sql.index(" FOR SELECT ") + len(" FOR "):]
        statements.append(sql)
    return body, statements


def _queries(token: str, user_id: int, run_id: int, sample_id: int, middle_id: int, requests: dict,
             few: dict, tokens: dict) -> tuple[list[dict], dict]:
    """Every query, with the SQL the API runs for it (captured in-process) and its request counts."""
    from urllib.parse import urlencode, urlparse

    from django.conf import settings
    from rest_framework.test import APIClient

    from sxtseg.catalog.models import CatalogObject

    base = bench_catalog._queries("postgresql", token, user_id)  # the filtered page, the aggregate, the SQL-only one
    by_name = {q["name"]: q for q in base}
    client = APIClient()
    page = "/api/objects/?" + urlencode(OBJECTS_QUERY)
    url = page
    for _ in range(5):  # the 6th page: `next` followed five times
        body, _ = _capture(client, url, token)
        url = urlparse(json.loads(body)["next"])
        url = f"{url.path}?{url.query}"
    cursor = base64.b64encode(f"p={middle_id}".encode()).decode()  # DRF's cursor: position p, offset 0
    plain = [  # (name, kind, path, expected status[, user])
        ("filtered_objects_page6", "objects", url, 200),
        ("filtered_objects_small_project", "objects", page, 200, STRANGER),  # the owner of the 1% project
        ("filtered_objects_newest_project", "objects", page, 200, NEWCOMER),  # the owner of the last sample
        ("filtered_objects_middle", "objects", page + "&" + urlencode({"cursor": cursor}), 200),
        ("objects_one_run", "objects", f"/api/objects/?run={run_id}&page_size=100", 200),
        ("filtered_objects_one_run", "objects", page + f"&run={run_id}", 200),
        ("filtered_objects_one_sample", "objects", page + f"&sample={sample_id}", 200),
        ("filtered_objects_newest_first", "objects", page + "&ordering=-id", 200),
        ("export_csv_one_run", "export", f"/api/objects/?run={run_id}&export=csv", 200),
        ("export_csv_over_limit", "export_over_limit", "/api/objects/?" + urlencode(
            {k: v for k, v in OBJECTS_QUERY.items() if k != "page_size"}) + "&export=csv", 400)]
    out = [by_name["filtered_objects"]]
    skipped = {}
    for name, kind, path, status, *user in plain:
        if kind == "export_over_limit":
            limit = int(settings.EXPORT_MAX_ROWS)
            matching = CatalogObject.objects.filter(class_name="dmv", volume_um3__gte=0.02)[: limit + 1].count()
            if matching <= limit:
                skipped[name] = f"{matching:,} rows match, not over the export limit {limit:,}"
                continue
        who = tokens[user[0]] if user else token
        body, statements = _capture(client, path, who, status)
        if kind == "objects":
            assert len(statements) == 1, statements
            statements = statements[0]
        out.append({"name": name, "kind": kind, "url": path, "sql": statements, "params": [], "status": status,
                    **({"token": who} if who != token else {})})
    out.append(by_name["aggregate"])
    out.append({**by_name["object_aggregate_sql_only"], "clients": [1]})
    for query in out:
        slow = query["kind"].startswith("export") or query["name"] == "object_aggregate_sql_only"
        query["requests"] = few if slow else requests
        if query["name"] == "object_aggregate_sql_only":
            query["requests"] = {"1": 2}
            query["warmup"] = 0
    return out, skipped


def _make_catalog(spec: dict, counts: np.ndarray) -> list[int]:
    """Projects, samples and runs (the users come after, by `sxtseg catalog createuser`); returns the run ids."""
    from sxtseg.catalog.models import Project, Run, Sample

    bench = Project.objects.create(name=PROJECT, description="bench_catalog_scale")
    other = Project.objects.create(name=OTHER_PROJECT)
    samples, runs = [], []
    for i in range(len(counts)):
        name = f"cell{i:05d}"
        small = i % 100 == 99 if len(counts) >= 100 else i == len(counts) // 2  # the other project's samples
        samples.append(Sample(project=other if small else bench, name=name, modality="sxt",
                              fields={"grid": f"G{i % 7}"}, tags=[f"batch-{i // 100}"], **conditions(i)))
    if len(samples) >= 3:  # the last sample: a project of its own, begun after every other row
        samples[-1].project = Project.objects.create(name=NEWEST_PROJECT)
    Sample.objects.bulk_create(samples, batch_size=2000)
    for i, sample in enumerate(samples):
        folder = f"/data/sxt/results/{sample.name}"
        runs.append(Run(sample=sample, content_sha256=f"{spec['seed']:016x}{i:048x}", kind="run", results_dir=folder,
                        input_path=f"/data/sxt/{sample.name}.mrc", input_fingerprint=f"{i:064x}",
                        sxtseg_version="0.1.0", model_name="default", weights_sha256="0" * 64,
                        calibration={"method": "two-point", "input_kind": "lac", "scale": 1.0, "offset": 0.0},
                        parameters={"block_shape": [128, 512, 512], "halo": [16, 32, 32],
                                    "instances": {"dmv_min_distance_nm": 100.0, "dmv_min_diameter_nm": 180.0}},
                        timings_s={"open": 1.0, "calibrate": 0.5, "segment": 600.0, "instances": 120.0,
                                   "measure": 60.0, "write": 30.0},
                        artefacts={k: f"file://{folder}/{v}" for k, v in (
                            ("ome_zarr", "volume.ome.zarr"), ("objects", "objects.csv"),
                            ("quicklook", "quicklook.png"), ("summary", "summary.json"))},
                        voxel_size_nm=[VOXEL_NM] * 3))
    Run.objects.bulk_create(runs, batch_size=2000)
    return [run.pk for run in runs]


def _load(spec: dict, conninfo: str, counts: np.ndarray, run_ids: list[int]) -> dict:
    """The object rows (and measures) in batches over ``jobs`` connections; indexes dropped first and made after."""
    import psycopg

    min_free = spec["min_free_gb"] * 1e9
    with psycopg.connect(conninfo, autocommit=True) as conn:
        schema = _schema(conn)
        free_before = _free_bytes(conn)
        dropped = []
        if spec["index_mode"] == "after":
            for c in schema["constraints"]:  # the primary key (its index with it) and the foreign key to the run
                conn.execute(f'ALTER TABLE catalog_catalogobject DROP CONSTRAINT "{c["name"]}"')
                dropped.append(c["name"])
            for i in schema["indexes"]:
                if i["constraint"] is None:
                    conn.execute(f'DROP INDEX "{i["name"]}"')
                    dropped.append(i["name"])
    work = batches(run_ids, counts, spec["batch_rows"])
    todo = list(enumerate(work))
    lock = threading.Lock()
    done, errors, stop = [], [], {"reason": None}
    index_bytes_per_row = 130.0  # the four object indexes take 94 B/row (10^7 and 10^8); and a build's sort files
    started = time.perf_counter()

    def worker():
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while True:
                with lock:
                    if not todo or errors or stop["reason"]:
                        return
                    index, batch = todo.pop(0)
                    loaded = sum(sum(b["counts"]) for _, b in done)
                    free = _free_bytes(conn)
                    need = (sum(batch["counts"]) * 300 + (loaded + sum(batch["counts"])) * index_bytes_per_row
                            if spec["index_mode"] == "after" else sum(batch["counts"]) * 400)
                    if free is not None and free - need < min_free:
                        stop["reason"] = (f"disk: {free / 1e9:.1f} GB free at {loaded:,} rows; the next batch and "
                                          f"the indexes would leave less than {spec['min_free_gb']} GB")
                        print(stop["reason"], file=sys.stderr, flush=True)
                        return
                t0 = time.perf_counter()
                try:
                    conn.execute(LOAD_SQL, batch)
                except Exception as exc:  # noqa: BLE001 - reported after the other workers stop
                    errors.append(exc)
                    return
                seconds = time.perf_counter() - t0
                with lock:
                    done.append((index, batch))
                    loaded = sum(sum(b["counts"]) for _, b in done)
                    elapsed = time.perf_counter() - started
                    rate = loaded / elapsed
                    print(f"load: batch {index + 1}/{len(work)}: {sum(batch['counts']):,} rows in {seconds:.1f} s; "
                          f"{loaded:,} rows in {elapsed / 60:.1f} min, {rate:,.0f} rows/s, "
                          f"{(spec['rows'] - loaded) / rate / 60:.1f} min to go, "
                          f"{(free or 0) / 1e9:.1f} GB free", file=sys.stderr, flush=True)

    threads = [threading.Thread(target=worker) for _ in range(spec["jobs"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    load_s = time.perf_counter() - started
    loaded = sum(sum(b["counts"]) for _, b in done)
    out = {"index_mode": spec["index_mode"], "jobs": spec["jobs"], "batches": len(done),
           "batch_rows": spec["batch_rows"], "rows": loaded, "runs_with_objects": sum(len(b["runs"]) for _, b in done),
           "seconds": load_s, "rows_per_s": loaded / load_s, "stopped_early": stop["reason"],
           "free_disk_bytes_before": free_before, "dropped_before_load": dropped, "builds": []}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        out["maintenance_work_mem"] = spec["maintenance_work_mem"]
        conn.execute(f"SET maintenance_work_mem = '{spec['maintenance_work_mem']}'")
        out["max_parallel_maintenance_workers"] = _scalar(conn, "SHOW max_parallel_maintenance_workers")
        if spec["index_mode"] == "after":
            # the primary key first (as the table had it), then every other index, then the foreign key
            steps = [(c["name"], f'ALTER TABLE catalog_catalogobject ADD CONSTRAINT "{c["name"]}" {c["definition"]}')
                     for c in schema["constraints"] if c["type"] == "p"]
            steps += [(i["name"], i["definition"]) for i in schema["indexes"] if i["constraint"] is None]
            steps += [(c["name"], f'ALTER TABLE catalog_catalogobject ADD CONSTRAINT "{c["name"]}" {c["definition"]}')
                      for c in schema["constraints"] if c["type"] != "p"]
            for name, statement in steps:
                t0 = time.perf_counter()
                conn.execute(statement)
                seconds = time.perf_counter() - t0
                out["builds"].append({"name": name, "statement": statement, "seconds": seconds,
                                      "minutes": seconds / 60})
                print(f"load: {name} in {seconds / 60:.1f} min", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        conn.execute("SELECT setval(pg_get_serial_sequence('catalog_catalogobject', 'id'), "
                     "(SELECT coalesce(max(id), 1) FROM catalog_catalogobject))")
        out["sequence_s"] = time.perf_counter() - t0
        after = _schema(conn)
        out["schema_restored"] = after == schema
        assert out["schema_restored"], (schema, after)
        out["schema"] = after
        out["measure_rows"] = _scalar(conn, "SELECT count(*) FROM catalog_measure")
    out["index_seconds"] = sum(b["seconds"] for b in out["builds"])
    out["total_seconds"] = load_s + out["index_seconds"]
    return out


def phase(spec: dict) -> dict:
    """Make (or reuse) the database, load it, settle it, serve it with gunicorn, time the queries."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    work = Path(spec["work"])
    (work / "phase.pid").write_text(str(os.getpid()))
    env = {**os.environ, "SXTSEG_CATALOG_SECRET_KEY": "bench-" + os.urandom(16).hex(),
           "SXTSEG_CATALOG_STATIC_ROOT": str(work / "static"), "XDG_DATA_HOME": str(work / "xdg"),
           "SXTSEG_CATALOG_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    env.pop("SXTSEG_CATALOG_DB", None)
    if spec["export_max_rows"]:
        env["SXTSEG_CATALOG_EXPORT_MAX_ROWS"] = str(spec["export_max_rows"])
    server_conninfo = make_conninfo(spec["url"] or "", dbname="postgres")
    name = spec["reuse_db"] or f"sxtseg_scale_{os.getpid()}"
    record = {"database": name}
    dropdb = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a terminated phase still stops its server below
    gunicorn = log = None
    try:
        with psycopg.connect(server_conninfo, autocommit=True) as admin:
            if not spec["reuse_db"]:
                admin.execute(f"CREATE DATABASE {name}")
            user, host, port = admin.info.user, admin.info.host, admin.info.port
            record["server"] = {"server_version": _scalar(admin, "SHOW server_version"), **{
                k: _scalar(admin, f"SHOW {k}") for k in (
                    "fsync", "synchronous_commit", "shared_buffers", "work_mem", "maintenance_work_mem",
                    "effective_cache_size", "random_page_cost", "max_wal_size", "max_parallel_workers_per_gather",
                    "max_parallel_maintenance_workers", "jit")}}
        if not spec["reuse_db"] and not spec["keep_db"]:
            def dropdb():
                with psycopg.connect(server_conninfo, autocommit=True) as admin:
                    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        params = conninfo_to_dict(server_conninfo)
        password = params.get("password") or os.environ.get("PGPASSWORD", "")
        from urllib.parse import quote

        env["SXTSEG_CATALOG_URL"] = f"postgresql://{quote(user)}:{quote(password)}@{host}:{port}/{name}"
        conninfo = make_conninfo(server_conninfo, dbname=name)
        os.environ.update(env)

        from sxtseg.catalog import configure

        t0 = time.perf_counter()
        configure()  # the shipped migrations (on a reused database: only the new ones, on the loaded rows)
        record["migrate_s"] = time.perf_counter() - t0
        from django.contrib.auth import get_user_model
        from django.db import connection
        from rest_framework.authtoken.models import Token

        from sxtseg.catalog.models import Run

        counts = object_counts(spec["runs"], spec["rows"], spec["seed"])  # --reuse-db: give the load's --rows
        if not spec["reuse_db"]:
            t0 = time.perf_counter()
            run_ids = _make_catalog(spec, counts)
            for who, project, role in ((USER, PROJECT, "member"), (STRANGER, OTHER_PROJECT, "owner"),
                                       (NEWCOMER, NEWEST_PROJECT, "owner")):
                cli = [sys.executable, "-m", "sxtseg.cli", "catalog", "createuser", who, "--project", project,
                       "--role", role]
                subprocess.run(cli, env=env, capture_output=True, text=True, check=True)
            record["catalog_s"] = time.perf_counter() - t0
            connection.close()
            print(f"catalog: {len(run_ids)} samples and runs; loading {spec['rows']:,} object rows "
                  f"({spec['index_mode']} indexes, {spec['jobs']} connections)", file=sys.stderr, flush=True)
            record["load"] = _load(spec, conninfo, counts, run_ids)
        else:
            record["load"] = {"reused": f"database {name} as loaded before; migrations: {record['migrate_s']:.1f} s"}
        if spec["load_only"]:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                record["sizes"] = _sizes(conn)
            return record
        with psycopg.connect(conninfo, autocommit=True) as conn:
            t0 = time.perf_counter()
            conn.execute("VACUUM (ANALYZE)")
            record["vacuum_analyze_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            conn.execute("CHECKPOINT")
            record["checkpoint_s"] = time.perf_counter() - t0
            record["sizes"] = _sizes(conn)
            record["sizes"]["free_disk_bytes"] = _free_bytes(conn)
            record["schema"] = _schema(conn)
            # the run and sample of the queries: the bench run three quarters of the way through the runs (late in
            # the table: a plan that walks the primary key from the first row would show)
            run_id, sample_id, run_rows = conn.execute(
                "SELECT r.id, r.sample_id, m.value FROM catalog_run r JOIN catalog_sample s ON s.id = r.sample_id "
                "JOIN catalog_project p ON p.id = s.project_id JOIN catalog_measure m ON m.run_id = r.id "
                "AND m.name = 'dmv_count' WHERE p.name = %s ORDER BY abs(r.id - (SELECT 0.75 * max(id) + 0.25 * "
                "min(id) FROM catalog_run)), r.id LIMIT 1", (PROJECT,)).fetchone()
            middle_id = _scalar(conn, "SELECT (max(id) + min(id)) / 2 FROM catalog_catalogobject")
            record["objects_per_run"] = {"min": int(counts.min()), "median": float(np.median(counts)),
                                         "max": int(counts.max())}
        user_id = get_user_model().objects.get(username=USER).pk
        token = Token.objects.get(user_id=user_id).key
        tokens = {who: Token.objects.get(user__username=who).key for who in (STRANGER, NEWCOMER)}
        record["query_subjects"] = {"run": run_id, "sample": sample_id, "run_dmv_count": run_rows,
                                    "run_objects": Run.objects.get(pk=run_id).object_rows.count(),
                                    "middle_object_id": middle_id}
        queries, record["skipped_queries"] = _queries(token, user_id, run_id, sample_id, middle_id, spec["requests"],
                                                      spec["few_requests"], tokens)
        connection.close()
        plans = {}
        for query in queries:
            statements = query["sql"] if isinstance(query["sql"], list) else [query["sql"]]
            if query["params"]:  # bench_catalog's SQL-only aggregate: %s parameters
                with psycopg.connect(conninfo) as conn:
                    statements = [psycopg.ClientCursor(conn).mogrify(s, query["params"]) for s in statements]
            plans[query["name"]] = {"before_timing": _explain(conninfo, statements)}
            print(f"explain {query['name']}: {[p['execution_ms'] for p in plans[query['name']]['before_timing']]} ms",
                  file=sys.stderr, flush=True)

        gunicorn, log, port = start_gunicorn(work, "gunicorn", spec["workers"], env)
        from django.conf import settings

        client_spec = {"host": "127.0.0.1", "port": port, "token": token, "clients": spec["clients"],
                       "budget_s": spec["budget_s"], "warmup": spec["warmup"], "queries": queries,
                       "export_limit": int(settings.EXPORT_MAX_ROWS), "slow_ms": spec["slow_ms"],
                       "db": {"vendor": "postgresql", "conninfo": conninfo}}
        print(f"gunicorn on port {port} ({spec['workers']} workers); client process measuring",
              file=sys.stderr, flush=True)
        load = os.getloadavg()[0]
        done = subprocess.run([sys.executable, "-c", CLIENT], input=json.dumps(client_spec), env=env,
                              stdout=subprocess.PIPE, text=True, timeout=4 * 3600)
        if done.returncode != 0:
            raise RuntimeError(f"the client process failed (exit {done.returncode})")
        latency = json.loads(done.stdout.strip().splitlines()[-1])
        latency["load_average_1min_before"] = load
        latency["load_average_1min_after"] = os.getloadavg()[0]
        latency["gunicorn_workers"] = spec["workers"]
        from gunicorn.config import Config

        latency["gunicorn_timeout_s"] = Config().timeout  # sxtseg's gunicorn_config leaves gunicorn's default
        latency["export_max_rows"] = client_spec["export_limit"]
        for query in queries:
            statements = query["sql"] if isinstance(query["sql"], list) else [query["sql"]]
            if query["params"]:
                with psycopg.connect(conninfo) as conn:
                    statements = [psycopg.ClientCursor(conn).mogrify(s, query["params"]) for s in statements]
            if max(p["execution_ms"] or 0 for p in plans[query["name"]]["before_timing"]) < spec["slow_ms"]:
                plans[query["name"]]["after_timing"] = _explain(conninfo, statements)
            else:  # a slow plan is not run again
                plans[query["name"]]["after_timing"] = plans[query["name"]]["before_timing"]
        latency["queries"] = {q["name"]: {"url": q.get("url"), "sql": q["sql"], "expected_status": q.get("status", 200),
                                          "requests": q["requests"], "explain": plans[q["name"]]} for q in queries}
        record["latency"] = latency
        return record
    finally:
        _stop(gunicorn)
        if log is not None:
            log.close()
        if dropdb is not None:
            from django.conf import settings as django_settings

            if django_settings.configured:
                from django.db import connections

                connections.close_all()
            dropdb()


# ---------------------------------------------------------------------------------------------------------------------
# the orchestration


def run_phase(spec: dict, work: Path, pg_options: list[str]) -> dict:
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec))
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", str(spec_path)]
    env = dict(os.environ)
    if spec["cluster"]:
        options = [x for o in pg_options for x in ("-o", o)]
        command = ["pg_virtualenv", "-t", *options, "--", *command]
        env["PGPORT"] = str(free_port())
    process = subprocess.Popen(command, env=env, stdout=sys.stderr, start_new_session=True)
    try:
        returncode = process.wait()
    except BaseException:
        _interrupt(process, work / "phase.pid")
        raise
    if returncode != 0:
        raise RuntimeError(f"the phase failed (exit {returncode}); its output is above")
    return json.loads(spec_path.with_suffix(".result.json").read_text())


def summarise(record: dict) -> list[dict]:
    """One row per query and client count: API and SQL p50/p95/max, the ratios, and whether it is usable."""
    latency = record["result"].get("latency", {})
    rows = latency.get("results", [])
    table = []
    for name, query in latency.get("queries", {}).items():
        for clients in sorted({r["clients"] for r in rows if r["query"] == name}):
            found = {r["mode"]: r for r in rows if r["query"] == name and r["clients"] == clients}
            entry = {"query": name, "clients": clients}
            for mode, r in found.items():
                for k in ("p50_ms", "p95_ms", "max_ms", "requests"):
                    entry[f"{mode}_{k}"] = r[k]
            if "api" in found and "sql" in found:
                entry["ratio_p50_api_over_sql"] = found["api"]["p50_ms"] / found["sql"]["p50_ms"]
                entry["ratio_p95_api_over_sql"] = found["api"]["p95_ms"] / found["sql"]["p95_ms"]
            table.append(entry)
    return table


def verdicts(record: dict) -> dict:
    """Per query: p95 at 1 client (API, else SQL) under a second, and no sequential scan of the object table."""
    latency = record["result"].get("latency", {})
    out = {}
    for name, query in latency.get("queries", {}).items():
        p95 = {}
        for clients in (1, 16):
            found = {r["mode"]: r for r in latency["results"] if r["query"] == name and r["clients"] == clients}
            p95[clients] = (found.get("api") or found.get("sql") or {}).get("p95_ms")
        seq = any(p["seq_scan_on_objects"] for p in query["explain"]["after_timing"])
        out[name] = {"p95_ms_1_client": p95[1], "p95_ms_16_clients": p95[16], "seq_scan_on_objects": seq,
                     "first_ms": latency.get("first_ms", {}).get(name),
                     "errors": [e for e in latency.get("errors", []) if e["query"] == name],
                     "usable": p95[1] is not None and p95[1] < LIMIT_1_CLIENT_P95_MS and not seq}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="object rows (default 100,000,000; quick 20,000)")
    parser.add_argument("--quick", action="store_true", help="20,000 rows in 20 runs, few requests: under a minute")
    parser.add_argument("--objects-per-run", type=int,
                        help="mean objects per run (default 100,000: 10^3 cells at 10^8 rows, as issue 15 says; "
                             "quick 1,000)")
    parser.add_argument("--batch-rows", type=int, default=4_000_000, help="rows per INSERT (default 4,000,000)")
    parser.add_argument("--jobs", type=int, default=2, help="connections loading at once (default 2)")
    parser.add_argument("--index-mode", choices=("after", "during"), default="after",
                        help="build the object table's indexes after the load (default) or load with them")
    parser.add_argument("--maintenance-work-mem", default="1GB", help="for the index builds (default 1GB)")
    parser.add_argument("--min-free-gb", type=float, default=10.0,
                        help="stop loading when less would be left after the indexes (default 10)")
    parser.add_argument("--requests", type=int, help="timed requests per query at 16 clients (default 400, quick 32;"
                                                     " half at 1 client)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--export-max-rows", type=int,
                        help="the server's SXTSEG_CATALOG_EXPORT_MAX_ROWS (default: its own, 1,000,000; quick 2,000, "
                             "under a run's rows, over the filtered query's)")
    parser.add_argument("--url", help="postgresql:// URL of a server to make the database on (default: PGHOST..., "
                                      "else a throwaway pg_virtualenv cluster)")
    parser.add_argument("--pg-option", action="append", default=None,
                        help="postgresql.conf setting of the throwaway cluster (repeatable; default "
                             f"{' '.join(DEFAULT_PG_OPTIONS)}; quick fsync=on)")
    parser.add_argument("--keep-db", action="store_true", help="leave the database there (its name is in the record)")
    parser.add_argument("--reuse-db", metavar="NAME", help="measure database NAME as loaded before (--url or PGHOST): "
                                                           "migrate, settle, measure; no load")
    parser.add_argument("--load-only", action="store_true", help="stop after the load and index builds (sizes "
                                                                     "before VACUUM; no server, no queries)")
    parser.add_argument("--slow-ms", type=float, default=5000.0,
                        help="a query whose first answer (or p95 at 1 client) takes longer is measured at 1 client "
                             "only, and its plan not run again (default 5000)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--phase", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        result = phase(json.loads(Path(args.phase).read_text()))
        Path(args.phase).with_suffix(".result.json").write_text(json.dumps(result))  # pg_virtualenv talks on stdout
        return result

    rows = args.rows or (20_000 if args.quick else 100_000_000)
    per_run = args.objects_per_run or (1_000 if args.quick else 100_000)
    runs = max(1, round(rows / per_run))
    requests = args.requests or (32 if args.quick else 400)
    pg_options = args.pg_option if args.pg_option is not None else (
        ["fsync=on"] if args.quick else list(DEFAULT_PG_OPTIONS))  # quick: no 4 GB of shared memory on a CI box
    url = args.url
    cluster = not url and not os.environ.get("PGHOST")
    if args.reuse_db and cluster:
        parser.error("--reuse-db needs a server: --url or PGHOST")
    if cluster and shutil.which("pg_virtualenv") is None:
        record = {"benchmark": "bench_catalog_scale", "skipped": "no PostgreSQL: no --url, PGHOST is not set and "
                                                                 "pg_virtualenv (postgresql-common) is not installed"}
        print(json.dumps(record, indent=1))
        return record
    spec = {"rows": rows, "runs": runs, "batch_rows": args.batch_rows, "jobs": args.jobs,
            "index_mode": args.index_mode, "maintenance_work_mem": args.maintenance_work_mem,
            "min_free_gb": args.min_free_gb, "workers": args.workers,
            "export_max_rows": args.export_max_rows or (2_000 if args.quick else None), "url": url, "cluster": cluster,
            "keep_db": args.keep_db, "reuse_db": args.reuse_db, "load_only": args.load_only, "slow_ms": args.slow_ms,
            "seed": args.seed, "clients": [1, 16],
            "requests": {"1": max(1, requests // 2), "16": requests},
            "few_requests": {"1": 4 if args.quick else 10, "16": 16 if args.quick else 32},
            "warmup": 1 if args.quick else 3, "budget_s": 5 if args.quick else 30}
    record = {"benchmark": "bench_catalog_scale", "quick": args.quick, "machine": machine(), "versions": versions(),
              "parameters": {**{k: v for k, v in spec.items() if k not in ("url",)},
                             "objects_per_run_mean": per_run, "objects_query": OBJECTS_QUERY,
                             "aggregate_query": AGGREGATE_QUERY,
                             "server": "pg_virtualenv -t " + " ".join("-o " + o for o in pg_options) if cluster else
                             "given (--url or PGHOST): its own settings, in result.server"},
              "command": " ".join(["python", "benchmarks/bench_catalog_scale.py", *(sys.argv[1:] if argv is None
                                                                                    else argv)])}
    if url:  # no password in the record
        from psycopg.conninfo import conninfo_to_dict

        record["command"] = record["command"].replace(url, "URL")
        record["parameters"]["server_host"] = {k: v for k, v in conninfo_to_dict(url).items() if k != "password"}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # terminated: still clean up below
    work = Path(tempfile.mkdtemp(prefix="sxtseg-bench-catalog-scale-"))
    started = time.perf_counter()
    try:
        spec["work"] = str(work)
        record["result"] = run_phase(spec, work, pg_options)
    finally:
        bench_catalog.kill_leftover_servers(work.glob("gunicorn.pid"))  # a server left by a phase that was killed
        shutil.rmtree(work, ignore_errors=True)
    record["table"] = summarise(record)
    record["usable"] = verdicts(record)
    record["seconds"] = time.perf_counter() - started
    record["machine"]["load_average_at_end"] = list(os.getloadavg())
    print(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main()
