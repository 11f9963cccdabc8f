"""Register results folders (``sxtseg run``, ``sxtseg ct``, ``sxtseg cxr``) in the catalog.

:func:`read_results` reads and checks a folder without touching the
database; :func:`add_results` stores it in one transaction.  A folder is
identified by the sha256 of its result files, so adding it twice changes
nothing; a failed or killed ingest leaves nothing behind.  Object rows go in
bulk: PostgreSQL ``COPY`` (binary when the columns have their table types),
batched ``executemany`` of plain tuples on the sqlite3 module's cursor, never one
``INSERT`` per object through the ORM.  The rows are streamed from per-column
lists of Python values, never held as one list of tuples.  On SQLite an ingest
ends by refreshing the query planner's statistics (about 1 ms).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputNotFoundError, InvalidArgumentError, InvalidDataError

__all__ = ["Results", "read_results", "add_results", "add_many", "default_jobs", "CONDITION_FIELDS",
           "parse_conditions"]

#: ``--condition`` keys and their types (other facts go in ``--field key=value``).
CONDITION_FIELDS = {"cell_line": str, "infection": str, "hours_post_infection": float, "replicate": int,
                    "subject_id": str, "study_date": dt.date.fromisoformat}
INFECTION_VALUES = ("infected", "mock")
_BATCH = 10_000


@dataclass
class Results:
    """One run read from a results folder, checked, ready to store."""

    kind: str  # "run", "ct" or "cxr"
    folder: Path
    sample_name: str
    modality: str
    content_sha256: str
    run: dict
    measures: list[tuple[str, float | None, str]]
    objects: pd.DataFrame | None = None
    sample_fields: dict = field(default_factory=dict)


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _load_json(path: Path) -> dict:
    if not path.exists():
        raise InputNotFoundError(f"{path}: missing; {path.parent} is not a complete sxtseg results folder")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidDataError(f"{path}: not valid JSON ({exc})") from exc


def _unit(name: str) -> str:
    match = re.search(r"_(um3|um2|nm|um|mm|ml|percent|s)$", name)
    return {"percent": "%", "ml": "mL"}.get(match.group(1), match.group(1)) if match else ""


def _number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputNotFoundError(f"{path}: missing; {path.parent} is not a complete sxtseg results folder")
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InvalidDataError(f"{path}: not a readable CSV table ({exc})") from exc


def _objects_frame(path: Path, voxel_nm: list[float]) -> pd.DataFrame:
    """objects.csv with class names and the bounding box in nm, checked row by row."""
    from ..classes import CLASS_NAMES
    from .models import OBJECT_COLUMNS

    table = _read_csv(path)
    needed = {"label", "class_id", "voxel_count", "volume_um3", "centroid_z_nm", "centroid_y_nm", "centroid_x_nm",
              "bbox_z0", "bbox_y0", "bbox_x0", "bbox_z1", "bbox_y1", "bbox_x1"}
    missing = sorted(needed - set(table.columns))
    if missing:
        raise InvalidDataError(f"{path}: lacks the column(s) {', '.join(missing)}")
    for column in ("label", "class_id", "voxel_count", "volume_um3"):
        bad = table.index[pd.to_numeric(table[column], errors="coerce").isna()]
        if len(bad):
            raise InvalidDataError(f"{path}: row {int(bad[0]) + 2} has no valid {column} ({table[column][bad[0]]!r})")
    if table["label"].duplicated().any():
        row = int(table.index[table["label"].duplicated()][0])
        raise InvalidDataError(f"{path}: row {row + 2} repeats label {table['label'][row]}")
    columns: dict[str, Any] = {}  # built whole, then one DataFrame (inserting 28 columns one by one is slow)
    for column in OBJECT_COLUMNS:
        if column.startswith("bbox_"):
            axis = "zyx".index(column[5])
            columns[column] = table[column[:-3]].astype(float) * voxel_nm[axis]
        elif column in table:
            columns[column] = table[column]
        else:
            columns[column] = None
    codes, uniques = pd.factorize(table["class_id"])  # each class code named once, not once per row
    names = np.array([CLASS_NAMES.get(int(c), str(int(c))) for c in uniques] + [""], dtype=object)
    columns["class_name"] = names[codes].tolist()
    border = table.get("touches_border", False)
    if isinstance(border, pd.Series) and border.dtype == bool:
        columns["touches_border"] = border.copy()  # what the text comparison below gives for a bool column
    else:
        columns["touches_border"] = pd.Series(border, index=table.index).astype(str).str.lower().isin(("true", "1"))
    return pd.DataFrame(columns, index=table.index)


def _read_run(folder: Path) -> list[Results]:
    summary_path, objects_path, run_path = folder / "summary.json", folder / "objects.csv", folder / "run.json"
    summary = _load_json(summary_path)
    fingerprint = _load_json(run_path) if run_path.exists() else {}
    unit = summary.get("unit", "nm")
    scale = {"nm": 1.0, "um": 1000.0, "mm": 1e6}.get(unit)
    if scale is None or not summary.get("voxel_size"):
        raise InvalidDataError(f"{summary_path}: voxel_size/unit missing or unknown ({summary.get('unit')!r})")
    voxel_nm = [float(v) * scale for v in summary["voxel_size"]]
    objects = _objects_frame(objects_path, voxel_nm)
    if int(summary.get("objects", len(objects))) != len(objects):
        raise InvalidDataError(f"{objects_path}: holds {len(objects)} objects but {summary_path} says "
                               f"{summary['objects']}; the folder is inconsistent")
    numbers = summary.get("summary", {})
    dmv_rows = int((objects["class_name"] == "dmv").sum())
    if "dmv_count" in numbers and int(numbers["dmv_count"]) != dmv_rows:
        raise InvalidDataError(f"{objects_path}: has {dmv_rows} dmv rows but {summary_path} counts "
                               f"{numbers['dmv_count']} DMVs")
    measures = {}  # name -> (value, unit); the summary's own names win over the per-class ones (dmv_count)
    for name, per_class in numbers.get("classes", {}).items():
        for key, value in per_class.items():
            measures[f"{name}_{key}"] = (_number(value), _unit(key) if key != "count" else "")
    for key, value in numbers.items():
        if key != "classes" and not isinstance(value, (dict, list)):
            measures[key] = (_number(value), _unit(key))
    measures = [(name, value, unit) for name, (value, unit) in measures.items()]
    content = _sha256(summary_path.read_bytes(), objects_path.read_bytes(),
                      run_path.read_bytes() if run_path.exists() else b"")
    model = summary.get("model") or {}
    run = {"kind": "run", "results_dir": str(folder.resolve()),
           "input_path": str((summary.get("input") or {}).get("path", "")),
           "input_fingerprint": _sha256(json.dumps(fingerprint.get("input", summary.get("input")),
                                                   sort_keys=True).encode()),
           "sxtseg_version": str(summary.get("sxtseg_version", "")), "model_name": str(model.get("name", "")),
           "weights_sha256": str(model.get("sha256", "")), "calibration": summary.get("calibration") or {},
           "parameters": {**fingerprint.get("parameters", {}), "instances": summary.get("instances")},
           "timings_s": summary.get("timings_s") or {}, "voxel_size_nm": voxel_nm,
           "quality": [{"flag": str(f["flag"]), "message": str(f.get("message", ""))}
                       for f in summary.get("quality") or []],
           "artefacts": _artefacts(folder, {"ome_zarr": "volume.ome.zarr", "objects": "objects.csv",
                                            "quicklook": "quicklook.png", "summary": "summary.json"})}
    name = str(summary.get("sample") or folder.name)
    return [Results("run", folder, name, "sxt", content, run, measures, objects)]


def _artefacts(folder: Path, names: dict[str, str]) -> dict[str, str]:
    return {key: (folder / name).resolve().as_uri() for key, name in names.items() if (folder / name).exists()}


def _read_ct(folder: Path) -> list[Results]:
    report_path, zones_path = folder / "report.json", folder / "zones.csv"
    report = _load_json(report_path)
    zones = _read_csv(zones_path)
    both = zones[(zones["lung"] == "both") & (zones["zone"] == "all")]
    if len(both) != 1 or abs(float(both["lung_volume_ml"].iloc[0]) - float(report["lung_volume_ml"])) > 1e-6 * max(
            1.0, float(report["lung_volume_ml"])):
        raise InvalidDataError(f"{zones_path}: its both-lungs row disagrees with lung_volume_ml of {report_path}")
    severity = report.get("severity", {})
    measures = [(key, _number(report.get(key)), _unit(key)) for key in
                ("lung_volume_ml", "ggo_volume_ml", "consolidation_volume_ml", "ggo_percent", "consolidation_percent")]
    measures += [("severity_score", _number(severity.get("total_score")), ""),
                 ("involvement_percent", _number(severity.get("involvement_percent")), "%")]
    for lung, volume in (report.get("lungs", {}).get("volume_ml") or {}).items():
        measures.append((f"{lung}_volume_ml", _number(volume), "mL"))
    scan = report.get("scan", {})
    study = str(scan.get("study_date", "") or "")
    fields = {"subject_id": str(scan.get("patient_id", "") or "")}
    if re.fullmatch(r"\d{8}", study):
        fields["study_date"] = dt.date(int(study[:4]), int(study[4:6]), int(study[6:]))
    source = report.get("input") or {}
    name = str(scan.get("series_instance_uid") or Path(str(source.get("path", folder.name))).name)
    run = {"kind": "ct", "results_dir": str(folder.resolve()), "input_path": str(source.get("path", "")),
           "input_fingerprint": _sha256(json.dumps(scan, sort_keys=True, default=str).encode()),
           "sxtseg_version": str(report.get("sxtseg_version", "")), "model_name": "classical lung mask",
           "parameters": {"lesions": report.get("lesion_parameters"), "lungs": report.get("lung_parameters")},
           "voxel_size_nm": [float(v) * 1e6 for v in report.get("voxel_size_mm", [])],
           "artefacts": _artefacts(folder, {"ome_zarr": "ct.ome.zarr", "zones": "zones.csv",
                                            "quicklook": "quicklook.png", "report": "report.json"})}
    content = _sha256(report_path.read_bytes(), zones_path.read_bytes())
    return [Results("ct", folder, name, "ct", content, run, measures, None, fields)]


def _read_cxr(folder: Path) -> list[Results]:
    path = folder / "ranking.csv"
    table = _read_csv(path)
    for column in ("path", "covid_probability", "rank"):
        if column not in table:
            raise InvalidDataError(f"{path}: lacks the column {column}")
    raw = path.read_bytes()
    out = []
    for i, row in table.iterrows():
        probability = _number(row["covid_probability"])
        if probability is None or not 0.0 <= probability <= 1.0:
            raise InvalidDataError(f"{path}: row {i + 2} has covid_probability {row['covid_probability']!r}")
        measures = [("covid_probability", probability, ""), ("rank", _number(row["rank"]), "")]
        measures += [(c, _number(row[c]), "") for c in table.columns if c.startswith("probability_")]
        if "lung_opacity_fraction" in table:
            measures.append(("lung_opacity_fraction", _number(row["lung_opacity_fraction"]), ""))
        image = Path(str(row["path"]))
        run = {"kind": "cxr", "results_dir": str(folder.resolve()), "input_path": str(image),
               "input_fingerprint": _sha256(str(image).encode()), "sxtseg_version": "",
               "artefacts": _artefacts(folder, {"ranking": "ranking.csv"})}
        out.append(Results("cxr", folder, image.name, "cxr", _sha256(raw, str(i).encode()), run, measures))
    return out


def read_results(folder) -> list[Results]:
    """Read and check a results folder (nothing is stored); a CXR ranking gives one Results per image.

    Raises
    ------
    InputNotFoundError, InvalidDataError
        A missing file, an unreadable table, or a table that disagrees with
        its summary: the message names the file (and the row).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputNotFoundError(f"{folder}: no such results folder")
    if (folder / "summary.json").exists() or (folder / "objects.csv").exists():
        return _read_run(folder)
    if (folder / "report.json").exists():
        return _read_ct(folder)
    if (folder / "ranking.csv").exists():
        return _read_cxr(folder)
    raise InvalidDataError(f"{folder}: not an sxtseg results folder (no summary.json, report.json or ranking.csv)")


def parse_conditions(items) -> dict[str, Any]:
    """``["key=value", ...]`` (or a dict) to typed condition fields; unknown keys are refused, listing the known."""
    pairs = items.items() if isinstance(items, dict) else [_split(item) for item in items or []]
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key not in CONDITION_FIELDS:
            raise InvalidArgumentError(f"unknown condition field {key!r}; known: {', '.join(CONDITION_FIELDS)} "
                                       "(other facts go in --field key=value)")
        try:
            out[key] = CONDITION_FIELDS[key](value) if not isinstance(value, CONDITION_FIELDS[key]) else value
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"condition {key}={value!r}: {exc}") from exc
        if key == "infection" and out[key] not in INFECTION_VALUES:
            raise InvalidArgumentError(f"condition infection={value!r}: must be one of {', '.join(INFECTION_VALUES)}")
    return out


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise InvalidArgumentError(f"{item!r}: expected key=value")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()


def _column_values(column: pd.Series) -> list:
    """A column as Python values, missing ones as None (what ``astype(object).where(notna, None)`` gives, faster)."""
    if not isinstance(column.dtype, np.dtype):  # pandas' own dtypes (strings, nullable numbers)
        return column.astype(object).where(column.notna(), None).tolist()
    if column.dtype.kind in "iub":  # no missing values possible
        return column.tolist()
    if column.dtype.kind == "f":
        values = column.to_numpy()
        out = values.tolist()
        for i in np.flatnonzero(np.isnan(values)):
            out[i] = None
        return out
    return column.astype(object).where(column.notna(), None).tolist()


#: PostgreSQL binary COPY type of each kind of object column, and the NumPy dtype kinds it takes.
_BINARY = {"BigAutoField": ("int8", "i"), "BigIntegerField": ("int8", "i"), "SmallIntegerField": ("int2", "i"),
           "FloatField": ("float8", "fi"), "BooleanField": ("bool", "b"), "CharField": ("text", "")}


#: The key columns that lead every object row: the same value for all the rows of a run.
_KEYS = ("run_id", "project_id")


def _binary_types(frame: pd.DataFrame, columns: list[str]) -> list[str] | None:
    """COPY types of ``columns`` (the ``_KEYS`` first) when every frame column fits its table column, else None."""
    from .models import CatalogObject

    types = []
    for name in columns:
        field = CatalogObject._meta.get_field(name[:-3] if name in _KEYS else name)
        kind = "BigAutoField" if name in _KEYS else field.get_internal_type()
        if kind not in _BINARY:
            return None
        copy_type, dtypes = _BINARY[kind]
        if name not in _KEYS:
            column = frame[name]
            if kind == "CharField":
                if not all(isinstance(v, str) for v in column.tolist()):
                    return None
            elif column.isna().all():
                pass  # all NULL
            elif not isinstance(column.dtype, np.dtype) or column.dtype.kind not in dtypes:
                return None
            elif copy_type == "int2" and len(column) and not -32768 <= column.min() <= column.max() <= 32767:
                return None  # out of range: the text COPY reports it as before
        types.append(copy_type)
    return types


def _object_rows(keys: tuple[int, ...], frame: pd.DataFrame, columns: list[str]):
    """The rows of ``columns`` (the ``keys``' columns first), as an iterator of tuples of Python values.

    Each column is turned into a list once; the tuples are made as they are
    consumed, so the database driver frees each row as soon as it is written
    (a list of 10,000 tuples costs more in allocation and garbage collection
    than the tuples themselves).
    """
    values = [_column_values(frame[c]) for c in columns[len(keys):]]
    return zip(*(itertools.repeat(key, len(frame)) for key in keys), *values)


def _insert_objects(run_id: int, project_id: int, frame: pd.DataFrame, progress: bool = False) -> None:
    """Object rows in bulk: COPY on PostgreSQL, batched executemany on SQLite (a progress bar per batch)."""
    from django.db import connection
    from tqdm import tqdm

    from .models import OBJECT_COLUMNS, CatalogObject

    columns = [*_KEYS, "class_name", *OBJECT_COLUMNS]
    rows = _object_rows((run_id, project_id), frame, columns)
    table = CatalogObject._meta.db_table
    bar = tqdm(total=len(frame), desc="object rows", unit="row", disable=not progress, mininterval=0.2)
    if connection.vendor == "postgresql":
        _copy_rows(connection, table, columns, rows, frame, bar)
    else:
        _executemany_rows(connection, table, columns, rows, len(frame), bar)
    bar.close()


def _copy_rows(connection, table: str, columns: list[str], rows, frame: pd.DataFrame, bar) -> None:
    """PostgreSQL: ``COPY`` the rows, binary when every column has the type of its table column."""
    # binary: the server then parses no text (a third of its time on float columns), psycopg packs the
    # numbers in C
    types = _binary_types(frame, columns)
    options = " (FORMAT BINARY)" if types else ""
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN{options}") as copy:
            if types:
                copy.set_types(types)
            for start in range(0, len(frame), _BATCH):
                for row in itertools.islice(rows, _BATCH):
                    copy.write_row(row)
                bar.update(min(_BATCH, len(frame) - start))


def _executemany_rows(connection, table: str, columns: list[str], rows, count: int, bar) -> None:
    """SQLite: one prepared ``INSERT`` run over the rows, ``_BATCH`` rows per ``executemany``.

    The rows go to the sqlite3 module's own cursor: Django's cursor wrapper
    copies an iterator of parameters (``itertools.tee``) to peek at its first
    row, which would keep every row alive until the last is written.  Errors
    still come out as Django's (``IntegrityError``...), and the rows are
    written in the caller's transaction (the same connection).
    """
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['?'] * len(columns))})"
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = connection.connection.cursor()
        try:
            for start in range(0, count, _BATCH):
                cursor.executemany(sql, itertools.islice(rows, _BATCH))
                bar.update(min(_BATCH, count - start))
        finally:
            cursor.close()


def add_results(folder, project: str, *, conditions=None, fields=None, tags=None, user=None,
                create_project: bool = True, progress: bool = False) -> list[dict]:
    """Register a results folder in ``project``; returns one dict per run (``run_id``, ``created``).

    Parameters
    ----------
    folder : path
        Written by ``sxtseg run`` (one sample), ``sxtseg ct`` or ``sxtseg cxr``.
    project : str
        Project name (created, with ``user`` as owner, when missing and ``create_project``).
    conditions : dict or list of "key=value", optional
        :data:`CONDITION_FIELDS` of the sample (cell line, infection, hours post infection...).
    fields : dict or list of "key=value", optional
        Free key-value facts of the sample.
    tags : list of str, optional
    user : django User, optional
        Recorded as who added the run; must be able to write to ``project``.
    progress : bool
        A progress bar while the object rows are written.

    Raises
    ------
    InvalidDataError, InvalidArgumentError, PermissionError
        Nothing is stored then.

    See Also
    --------
    add_many : many folders, the next one read while one is written, over several connections on PostgreSQL.
    """
    results = read_results(folder)
    conditions = parse_conditions(conditions)
    free = _free_fields(fields)
    return _store_results(results, project, conditions, free, tags, user, create_project, progress)


def _free_fields(fields) -> dict:
    return dict(fields) if isinstance(fields, dict) else dict(_split(f) for f in fields or [])


def _store_results(results: list[Results], project: str, conditions: dict, free: dict, tags, user,
                   create_project: bool, progress: bool) -> list[dict]:
    """Store what :func:`read_results` gave for one folder, in one transaction (this thread's connection)."""
    from django.db import connection, transaction

    from .database import refresh_sqlite_statistics

    with transaction.atomic():  # the whole folder or nothing (a CXR ranking holds many runs)
        done = [_add_one(item, project, conditions, free, tags, user, create_project, progress)
                for item in results]
    if any(d["created"] for d in done):
        refresh_sqlite_statistics(connection)  # SQLite's planner needs them for the object pages (ms)
    return done


def default_jobs() -> int:
    """Connections that :func:`add_many` writes over by default: 1 on SQLite (one writer), else 4.

    Measured on PostgreSQL (``benchmarks/bench_catalog.py --only-ingest --jobs``, docs/catalog.md):
    one connection is bound by its server backend (insert, index maintenance and the commit of
    one folder take about 200 ms of server time); four keep a 2-core server busy.
    """
    from django.db import connection

    return 1 if connection.vendor == "sqlite" else 4


def add_many(folders, project: str, *, conditions=None, fields=None, tags=None, user=None,
             create_project: bool = True, jobs: int | None = None, progress: bool = False):
    """Register many results folders; yields ``(folder, runs)`` in the folders' order as they are stored.

    Each folder is stored in its own transaction, as :func:`add_results` does: what is yielded is
    what ``add_results`` would return for it, and the stored rows are the same.  On PostgreSQL
    the folders are written over ``jobs`` connections at once (threads, one connection each),
    and the next folder is read and checked (:func:`read_results`: CSV parsing, hashing) in a
    background thread meanwhile.  SQLite has one writer, so there ``jobs`` is 1, and the folders
    are read one after the other (reading ahead made it slower, see :class:`_Reader`).

    Parameters
    ----------
    folders : iterable of paths
    project, conditions, fields, tags, user, create_project
        As for :func:`add_results`, the same for every folder; ``conditions`` may also be a
        callable giving the conditions of the folder at each index (``conditions(i)``).
    jobs : int, optional
        Connections to write over (default :func:`default_jobs`: 1 on SQLite, 4 on PostgreSQL).
        Inside a transaction (``transaction.atomic()``) the folders are written in it, one at a time.
    progress : bool
        A progress bar of the object rows while each folder is written (with one connection only).

    Raises
    ------
    InvalidDataError, InvalidArgumentError, PermissionError, InputNotFoundError
        Of the first folder (in the given order) that fails; its message names the file and the
        row.  The folders before it are stored and have been yielded; nothing of it is stored; the
        ones after it are not started.  With ``jobs`` > 1 up to ``jobs`` - 1 folders after it may
        have been written already: they are stored and yielded before the error is raised.
        Adding the same folders again adds only what is missing.
    """
    from django.db import connection

    folders = [Path(f) for f in folders]
    per_folder = callable(conditions)
    fixed = None if per_folder else parse_conditions(conditions)
    free = _free_fields(fields)
    if jobs is None:
        jobs = default_jobs()
    if int(jobs) < 1:
        raise InvalidArgumentError(f"jobs={jobs!r}: at least 1")
    connection.ensure_connection()
    if connection.vendor == "sqlite" or connection.in_atomic_block:  # one writer; or the caller's transaction
        jobs = 1
    jobs = min(int(jobs), max(1, len(folders)))

    def store(results, index: int, bar: bool):
        folder_conditions = parse_conditions(conditions(index)) if per_folder else fixed
        return _store_results(results, project, folder_conditions, free, tags, user, create_project, bar)

    with _Reader(folders, ahead=connection.vendor != "sqlite") as reader:
        if jobs == 1:
            yield from _pipelined(folders, reader, lambda results, index: store(results, index, progress))
        else:
            yield from _parallel(folders, reader, lambda results, index: store(results, index, False), jobs)


class _Reader:
    """Reads folders (:func:`read_results`) ahead of the writers, in a thread; or, with ``ahead`` false, when asked.

    On PostgreSQL the server works while the client waits: reading the next folder meanwhile
    wins (see docs/catalog.md).  On SQLite the engine runs in this process, and the sqlite3
    module lets go of the GIL for each row it writes: a reading thread then takes turns with
    it row by row.  Measured on a busy 2-core machine, reading ahead in a thread, or in a process
    of its own, made SQLite ingest slower, so there the folders are read one after the other.
    """

    def __init__(self, folders: list[Path], ahead: bool):
        from concurrent.futures import ThreadPoolExecutor

        self.folders = folders
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sxtseg-catalog-read") if ahead else None
        self.futures: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        return False

    def take(self, index: int) -> list[Results]:
        """Folder ``index``'s Results (its error raised here); reading ahead, the next one is started first."""
        if self.pool is None:
            return read_results(self.folders[index])
        for k in (index, index + 1):
            if k < len(self.folders) and k not in self.futures:
                self.futures[k] = self.pool.submit(read_results, self.folders[k])
        return self.futures.pop(index).result()


def _pipelined(folders: list[Path], reader: _Reader, store):
    """One connection (this thread's): folder k+1 read while folder k is written."""
    for index, folder in enumerate(folders):
        results = reader.take(index)  # folder k's own error, raised after folders < k are stored
        yield folder, store(results, index)


def _parallel(folders: list[Path], reader: _Reader, store, jobs: int):
    """``jobs`` writer threads, each with its own Django connection (closed when it ends), and a feeder thread.

    The feeder takes the folders from the reader in order and keeps at most ``jobs`` waiting.  A
    failure (reading or storing folder k) stops everything after k that has not started; what is
    being written finishes.  Every folder ends with an outcome (stored, failed, or not started),
    so the caller's thread yields the stored ones in the folders' order, then raises the first
    failure.
    """
    import queue
    import threading

    tasks: queue.Queue = queue.Queue(maxsize=jobs)
    outcomes: dict[int, tuple[bool, Any]] = {}  # index -> (True, runs) / (False, error) / (False, None): not started
    changed = threading.Condition()
    limit = [len(folders)]  # folders at this index and after are not started

    def finish(index: int, outcome: tuple[bool, Any]) -> None:
        with changed:
            if not outcome[0] and outcome[1] is not None:
                limit[0] = min(limit[0], index + 1)
            outcomes[index] = outcome
            changed.notify_all()

    def writer():
        from django.db import connections

        try:
            while (task := tasks.get()) is not None:
                index, results = task
                if index >= limit[0]:
                    finish(index, (False, None))
                    continue
                try:
                    finish(index, (True, store(results, index)))
                except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                    finish(index, (False, exc))
        finally:
            connections.close_all()  # this thread's connection

    def feeder():
        index = 0
        try:
            while index < len(folders) and index < limit[0]:
                try:
                    results = reader.take(index)
                except BaseException as exc:  # noqa: BLE001
                    finish(index, (False, exc))
                    index += 1
                    break
                tasks.put((index, results))
                index += 1
            for rest in range(index, len(folders)):
                finish(rest, (False, None))
        finally:
            for _ in range(jobs):
                tasks.put(None)

    threads = [threading.Thread(target=writer, name=f"sxtseg-catalog-write-{i}", daemon=True) for i in range(jobs)]
    threads.append(threading.Thread(target=feeder, name="sxtseg-catalog-feed", daemon=True))
    for thread in threads:
        thread.start()
    error = None
    try:
        for index, folder in enumerate(folders):
            with changed:
                while index not in outcomes:
                    changed.wait()
                stored, value = outcomes.pop(index)
            if stored:
                yield folder, value
            elif value is not None and error is None:
                error = value
    finally:
        with changed:  # the caller stopped early (or all is done): start nothing more
            limit[0] = -1
        for thread in threads:
            thread.join()
    if error is not None:
        raise error


def _add_one(item: Results, project: str, conditions: dict, free: dict, tags, user, create_project: bool,
             progress: bool) -> dict:
    """Store one Results unless its content is in already; a concurrent ingest of the same is not duplicated."""
    from django.db import IntegrityError

    from .models import Run

    attempts = 0
    while True:
        existing = Run.objects.filter(content_sha256=item.content_sha256).first()
        if existing is not None:  # the same results, already in: nothing changes
            return {"run_id": existing.pk, "sample": existing.sample.name, "created": False}
        try:
            run, sample = _store(item, project, conditions, free, tags, user, create_project, progress)
            return {"run_id": run.pk, "sample": sample.name, "created": True}
        except IntegrityError:  # another process stored this run, its project or its sample meanwhile: look again
            attempts += 1
            if attempts == 3:
                raise


def _store(item: Results, project: str, conditions: dict, free: dict, tags, user, create_project: bool,
           progress: bool):
    """Project (if new), sample, run, measures and objects of one Results, in one transaction."""
    from django.db import transaction

    from .access import can_write
    from .models import Measure, Membership, Project, Run, Sample

    with transaction.atomic():
        project_row = Project.objects.filter(name=project).first()
        if project_row is None:
            if not create_project:
                raise InvalidArgumentError(f"no project {project!r}")
            project_row = Project.objects.create(name=project)
            if user is not None and user.is_authenticated:
                Membership.objects.create(project=project_row, user=user, role="owner")
        elif user is not None and not can_write(user, project_row):
            raise PermissionError(f"{user}: may not write to project {project!r}")
        sample, _ = Sample.objects.get_or_create(project=project_row, name=item.sample_name,
                                                 defaults={"modality": item.modality})
        if sample.modality != item.modality:
            raise InvalidDataError(f"{item.folder}: sample {item.sample_name!r} of project {project!r} is "
                                   f"{sample.modality}, these results are {item.modality}")
        for key, value in {**item.sample_fields, **conditions}.items():
            setattr(sample, key, value)
        if free:
            sample.fields = {**sample.fields, **free}
        if tags:
            sample.tags = sorted(set(sample.tags) | set(tags))
        sample.save()
        run = Run.objects.create(sample=sample, content_sha256=item.content_sha256,
                                 added_by=user if user is not None and user.is_authenticated else None,
                                 **_jsonable(item.run))
        Measure.objects.bulk_create([Measure(run=run, name=n, value=v, unit=u) for n, v, u in item.measures])
        if item.objects is not None and len(item.objects):
            _insert_objects(run.pk, project_row.pk, item.objects, progress)
    return run, sample


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    return value
