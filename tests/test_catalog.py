"""The smart catalog: ingest of real results folders, the REST API, permissions, the Python client.

Runs against SQLite here, and again against a real PostgreSQL server (a throwaway
cluster from postgresql-common's ``pg_virtualenv``) through
``test_catalog_suite_on_postgresql``, which reruns this module in a subprocess with
``SXTSEG_CATALOG_TEST_URL`` set.  Under ``CI=true`` a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("django")
pytest.importorskip("rest_framework")

POSTGRES_URL = os.environ.get("SXTSEG_CATALOG_TEST_URL")
ON_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """Django configured on a fresh catalog database (SQLite file, or the PostgreSQL server given)."""
    from sxtseg.catalog import configure

    folder = tmp_path_factory.mktemp("catalog")
    os.environ["SXTSEG_CATALOG_SECRET_KEY"] = ""
    if POSTGRES_URL:
        configure(url=POSTGRES_URL)
    else:
        configure(db=folder / "catalog.sqlite3")
    from django.conf import settings
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)
    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append("testserver")
    return folder


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Real results folders: two `sxtseg run` cells, one `sxtseg ct` exam, one `sxtseg cxr` ranking."""
    import sxtseg
    from sxtseg.adapters.ct import analyse_ct
    from sxtseg.phantom.chest import make_chest_phantom

    if os.environ.get("SXTSEG_CATALOG_TEST_RESULTS"):  # the PostgreSQL rerun reads the SQLite run's folders
        root = Path(os.environ["SXTSEG_CATALOG_TEST_RESULTS"])
        return {name: root / name for name in ("cell1", "cell2", "ct", "cxr")}
    root = tmp_path_factory.mktemp("results")
    out = {}
    for seed in (1, 2):
        image, *_ = sxtseg.make_infected_cell(shape=(32, 96, 96), seed=seed)
        image.metadata["source"] = {"path": f"cell{seed}.mrc", "reader": "phantom"}
        sxtseg.run(image, root / f"cell{seed}", progress=False, mirror=False)  # results to catalog: the fast way
        out[f"cell{seed}"] = root / f"cell{seed}"
    ct, _ = make_chest_phantom(shape=(24, 96, 128), seed=3)
    with pytest.warns(UserWarning):
        analyse_ct(ct, root / "ct")
    out["ct"] = root / "ct"
    cxr = root / "cxr"
    cxr.mkdir()
    pd.DataFrame({"path": ["/data/a.png", "/data/b.png"], "covid_probability": [0.9, 0.2], "rank": [1, 2],
                  "probability_COVID-19": [0.9, 0.2], "probability_normal": [0.1, 0.8]}).to_csv(
        cxr / "ranking.csv", index=False)
    out["cxr"] = cxr
    return out


def _api(user=None):
    from rest_framework.test import APIClient

    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _user(name, project=None, role=None):
    from django.contrib.auth import get_user_model

    from sxtseg.catalog.models import Membership, Project

    user, _ = get_user_model().objects.get_or_create(username=name)
    if project is not None:
        Membership.objects.update_or_create(project=Project.objects.get(name=project), user=user,
                                            defaults={"role": role})
    return user


@pytest.fixture(scope="module")
def loaded(catalog, results):
    """The folders ingested into project "infection" (cells at 6 and 24 h) and "clinic" (CT and CXR)."""
    from sxtseg.catalog.ingest import add_results

    owner = _user("owner")
    runs = {}
    for name, hours in (("cell1", 6), ("cell2", 24)):
        runs[name] = add_results(results[name], "infection", user=owner, tags=["batch-1"], fields={"stain": "none"},
                                 conditions={"cell_line": "VeroE6", "infection": "infected",
                                             "hours_post_infection": hours, "replicate": 1})
    runs["ct"] = add_results(results["ct"], "clinic", user=owner)
    runs["cxr"] = add_results(results["cxr"], "clinic", user=owner)
    return {"owner": owner, "runs": runs}


def test_ingest_matches_the_folder(loaded, results):
    """Objects and measures through the API equal objects.csv and summary.json."""
    api = _api(loaded["owner"])
    run_id = loaded["runs"]["cell1"][0]["run_id"]
    run = api.get(f"/api/runs/{run_id}/").json()
    summary = json.loads((results["cell1"] / "summary.json").read_text())
    measures = {m["name"]: m["value"] for m in run["measures"]}
    assert measures["dmv_count"] == summary["summary"]["dmv_count"]
    assert measures["cytoplasm_volume_um3"] == pytest.approx(summary["summary"]["cytoplasm_volume_um3"])
    assert run["weights_sha256"] == summary["model"]["sha256"] and run["calibration"]["method"]
    assert run["artefacts"]["ome_zarr"].endswith("volume.ome.zarr")
    # the quality flags come along (the 32-slice cells are thin ones)
    assert run["quality"] == [{"flag": f["flag"], "message": f["message"]} for f in summary["quality"]]
    assert "thin_cell" in [q["flag"] for q in run["quality"]]
    table = pd.read_csv(results["cell1"] / "objects.csv")
    rows = api.get("/api/objects/", {"run": run_id, "page_size": 1000}).json()["results"]
    assert len(rows) == len(table)
    by_label = {r["label"]: r for r in rows}
    for row in table.itertuples():
        got = by_label[row.label]
        assert got["volume_um3"] == pytest.approx(row.volume_um3)
        assert got["centroid_x_nm"] == pytest.approx(row.centroid_x_nm)
        assert got["bbox_z1_nm"] == pytest.approx(row.bbox_z1 * summary["voxel_size"][0])
    ct = api.get(f"/api/runs/{loaded['runs']['ct'][0]['run_id']}/").json()
    report = json.loads((results["ct"] / "report.json").read_text())
    ct_measures = {m["name"]: m["value"] for m in ct["measures"]}
    assert ct_measures["lung_volume_ml"] == pytest.approx(report["lung_volume_ml"])
    assert ct_measures["severity_score"] == report["severity"]["total_score"]
    assert len(loaded["runs"]["cxr"]) == 2


def _expected_object_rows(folder: Path) -> list[tuple]:
    """What the catalog must hold for ``folder``'s objects.csv: one tuple per row, in the file's order."""
    from sxtseg.catalog.models import OBJECT_COLUMNS
    from sxtseg.classes import CLASS_NAMES

    summary = json.loads((folder / "summary.json").read_text())
    assert summary.get("unit", "nm") == "nm"
    out = []
    for record in pd.read_csv(folder / "objects.csv").to_dict("records"):
        row = [CLASS_NAMES[int(record["class_id"])]]
        for column in OBJECT_COLUMNS:
            if column.startswith("bbox_"):
                value = float(record[column[:-3]]) * float(summary["voxel_size"]["zyx".index(column[5])])
            else:
                value = record.get(column)
            row.append(None if isinstance(value, float) and np.isnan(value) else value)
        out.append(tuple(row))
    return out


def test_stored_object_rows_are_the_folders_value_for_value(loaded, results, tmp_path):
    """Every object row of a 25,000-object folder (three insert batches) is its objects.csv row, in its order.

    Same values and Python types column by column, missing values as NULL, ids consecutive in the
    file's order: what the bulk insert must store, whatever way it packs the rows.
    """
    from django.db import connection

    from sxtseg.catalog.database import refresh_sqlite_statistics
    from sxtseg.catalog.ingest import add_results
    from sxtseg.catalog.models import OBJECT_COLUMNS, CatalogObject, Project

    folder = tmp_path / "varied"
    shutil.copytree(results["cell1"], folder)
    _varied_objects(folder, 25_000, "varied-cell", seed=5)
    run_id = add_results(folder, "ingest-rows", user=loaded["owner"])[0]["run_id"]
    columns = ["id", "class_name", *OBJECT_COLUMNS]
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {', '.join(columns)} FROM catalog_catalogobject WHERE run_id = %s ORDER BY id",
                           [run_id])
            stored = cursor.fetchall()
        border = CatalogObject.objects.filter(run_id=run_id, touches_border=True).count()
    finally:  # the other tests count the rows of the two cells
        Project.objects.filter(name="ingest-rows").delete()
        refresh_sqlite_statistics(connection)
    expected = _expected_object_rows(folder)
    assert len(stored) == len(expected) == 25_000
    ids = [row[0] for row in stored]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    kinds = {c: CatalogObject._meta.get_field(c).get_internal_type() for c in columns[1:]}
    for got, want in zip(stored, expected):
        for column, value, wanted in zip(columns[1:], got[1:], want):
            if kinds[column] == "BooleanField":  # SQLite gives 0/1
                assert bool(value) is bool(wanted), column
            elif wanted is None:
                assert value is None, column
            else:
                assert type(value) is type(wanted) and value == wanted, (column, value, wanted)
    assert border == sum(row[-1] for row in expected)


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite only")
def test_sqlite_connection_has_the_catalog_settings(loaded):
    """Every SQLite catalog connection runs with the settings that docs/catalog.md lists (WAL, cache...)."""
    from django.db import connection

    from sxtseg.catalog.settings import SQLITE_PRAGMAS

    assert SQLITE_PRAGMAS == {"journal_mode": "WAL", "synchronous": "NORMAL", "cache_size": -65536,
                              "wal_autocheckpoint": 20000}
    expected = {"journal_mode": "wal", "synchronous": 1, "cache_size": -65536, "wal_autocheckpoint": 20000}
    connection.close()  # a new connection: the settings come with every one
    with connection.cursor() as cursor:
        for name, value in expected.items():
            cursor.execute(f"PRAGMA {name}")
            assert cursor.fetchone()[0] == value, name


def test_adding_twice_changes_nothing(loaded, results):
    from sxtseg.catalog.ingest import add_results
    from sxtseg.catalog.models import CatalogObject, Measure, Run

    before = (Run.objects.count(), CatalogObject.objects.count(), Measure.objects.count())
    again = add_results(results["cell1"], "infection", user=loaded["owner"])
    assert [r["created"] for r in again] == [False] and again[0]["run_id"] == loaded["runs"]["cell1"][0]["run_id"]
    assert (Run.objects.count(), CatalogObject.objects.count(), Measure.objects.count()) == before


def test_bad_folders_change_nothing(loaded, results, tmp_path):
    from sxtseg.catalog.ingest import add_results
    from sxtseg.catalog.models import Run
    from sxtseg.errors import SxtsegError

    count = Run.objects.count()
    broken = tmp_path / "broken"
    shutil.copytree(results["cell2"], broken)
    (broken / "objects.csv").write_text((broken / "objects.csv").read_text().rsplit("\n", 2)[0] + "\n")
    with pytest.raises(SxtsegError, match=r"objects\.csv: holds \d+ objects but .*summary\.json says"):
        add_results(broken, "infection")
    (broken / "objects.csv").unlink()
    with pytest.raises(SxtsegError, match=r"objects\.csv: missing"):
        add_results(broken, "infection")
    shutil.copy(results["cell2"] / "objects.csv", broken / "objects.csv")
    table = pd.read_csv(broken / "objects.csv")
    table["volume_um3"] = table["volume_um3"].astype(object)
    table.loc[1, "volume_um3"] = "lots"
    table.to_csv(broken / "objects.csv", index=False)
    with pytest.raises(SxtsegError, match=r"objects\.csv: row 3 has no valid volume_um3"):
        add_results(broken, "infection")
    with pytest.raises(SxtsegError, match="unknown condition field 'colour'"):
        add_results(results["cell2"], "infection", conditions={"colour": "red"})
    assert Run.objects.count() == count


def test_filters_run_over_all_rows(loaded):
    api = _api(loaded["owner"])
    samples = api.get("/api/samples/", {"m.dmv_count__gte": 1, "modality": "sxt"}).json()["results"]
    dmv_counts = {s["name"]: None for s in samples}
    assert dmv_counts and all(s["modality"] == "sxt" for s in samples)
    hours = api.get("/api/samples/", {"hours_post_infection__gte": 12}).json()["results"]
    assert [s["hours_post_infection"] for s in hours] == [24.0]
    assert len(api.get("/api/samples/", {"tag": "batch-1"}).json()["results"]) == 2
    assert len(api.get("/api/samples/", {"field": "stain:none"}).json()["results"]) == 2
    assert api.get("/api/samples/", {"tag": "nothing"}).json()["results"] == []
    # a quality flag: the two thin cells, not the CT or the X-rays (which carry no flags)
    assert sorted(s["name"] for s in api.get("/api/samples/", {"flag": "thin_cell"}).json()["results"]) == [
        "cell1", "cell2"]
    assert api.get("/api/samples/", {"flag": "coarse_voxels"}).json()["results"] == []
    flagged = api.get("/api/runs/", {"flag": "thin_cell"}).json()["results"]
    assert sorted(r["sample_name"] for r in flagged) == ["cell1", "cell2"]
    assert all("thin_cell" in [q["flag"] for q in r["quality"]] for r in flagged)
    assert [r["quality"] for r in api.get("/api/runs/", {"kind": "ct"}).json()["results"]] == [[]]
    dmvs = api.get("/api/objects/", {"class_name": "dmv", "volume_um3__gte": 0.001, "page_size": 1000}).json()
    assert dmvs["results"] and all(o["class_name"] == "dmv" and o["volume_um3"] >= 0.001 for o in dmvs["results"])
    # cursor pages: one object a page, following `next` visits every object once
    seen, page = [], api.get("/api/objects/", {"page_size": 1}).json()
    while True:
        seen += [o["id"] for o in page["results"]]
        if not page["next"]:
            break
        page = api.get(page["next"]).json()
    total = api.get("/api/objects/", {"export": "csv"})
    table = pd.read_csv(__import__("io").BytesIO(b"".join(total.streaming_content)))
    assert sorted(seen) == sorted(table["id"]) and len(seen) == len(set(seen))
    narrow = api.get("/api/objects/", {"fields": "id,volume_um3", "page_size": 2}).json()["results"]
    assert set(narrow[0]) == {"id", "volume_um3"}
    assert api.get("/api/objects/", {"fields": "id,nonsense"}).status_code == 400
    parquet = api.get("/api/objects/", {"export": "parquet", "class_name": "dmv"})
    assert pd.read_parquet(__import__("io").BytesIO(parquet.content))["class_name"].eq("dmv").all()


def test_aggregate_by_condition(loaded):
    api = _api(loaded["owner"])
    answer = api.get("/api/aggregate/", {"measure": "dmv_count", "by": "hours_post_infection"}).json()
    groups = {g["hours_post_infection"]: g for g in answer["groups"]}
    assert set(groups) == {6.0, 24.0} and all(g["count"] == 1 for g in groups.values())
    runs = api.get("/api/runs/", {"modality": "sxt"}).json()["results"]
    counts = {r["sample_name"]: {m["name"]: m["value"] for m in r["measures"]}["dmv_count"] for r in runs}
    assert sorted(g["mean"] for g in groups.values()) == sorted(counts.values())
    assert api.get("/api/aggregate/", {"measure": "dmv_count", "by": "colour"}).status_code == 400


def test_permissions(loaded, results):
    from sxtseg.catalog.models import Project

    Project.objects.get_or_create(name="other")
    collaborator = _user("collaborator", "infection", "collaborator")
    stranger = _user("stranger", "other", "member")
    member = _user("member", "infection", "member")
    sample = _api(loaded["owner"]).get("/api/samples/", {"project": "infection"}).json()["results"][0]
    post = {"results_dir": str(results["cell1"]), "project": "infection"}
    anonymous = _api()
    for path in ("/api/samples/", "/api/runs/", "/api/objects/", f"/api/samples/{sample['id']}/"):
        assert anonymous.get(path).status_code == 401
    assert anonymous.post("/api/runs/", post, format="json").status_code == 401
    assert anonymous.patch(f"/api/samples/{sample['id']}/", {"curation": "accepted"}, format="json").status_code == 401
    assert _api(collaborator).get(f"/api/samples/{sample['id']}/").status_code == 200
    assert _api(collaborator).post("/api/runs/", post, format="json").status_code == 403
    assert _api(collaborator).patch(f"/api/samples/{sample['id']}/", {"curation": "accepted"},
                                    format="json").status_code == 403
    assert _api(stranger).get(f"/api/samples/{sample['id']}/").status_code == 404
    assert _api(stranger).get("/api/objects/", {"project": "infection"}).json()["results"] == []
    assert _api(stranger).post("/api/runs/", post, format="json").status_code == 404
    curated = _api(member).patch(f"/api/samples/{sample['id']}/", {"curation": "accepted", "curation_note": "ok"},
                                 format="json")
    assert curated.status_code == 200 and curated.json()["curated_by"] == "member"
    assert _api(member).post("/api/runs/", post, format="json").status_code == 200  # already in: nothing new


def test_object_rows_carry_their_samples_project_and_move_with_it(loaded, results, tmp_path):
    """Every object row holds its sample's project (the access check's column); a moved sample takes its rows."""
    from django.db.models import F

    from sxtseg.catalog.ingest import add_results
    from sxtseg.catalog.models import CatalogObject, Project, Sample

    rows = CatalogObject.objects.all()
    assert rows.count() > 0 and rows.exclude(project_id=F("run__sample__project_id")).count() == 0
    folder = tmp_path / "moving"
    shutil.copytree(results["cell1"], folder)
    _varied_objects(folder, 300, "moving-cell", seed=7)
    add_results(folder, "lab-a")  # no owner: the other tests' users do not see it
    _user("lab-a-member", "lab-a", "member")
    Project.objects.get_or_create(name="lab-b")
    lab_b = _user("lab-b-member", "lab-b", "member")
    sample = Sample.objects.get(name="moving-cell")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        before = _api(_user("lab-a-member")).get("/api/objects/", {"sample": sample.pk, "page_size": 1000}).json()
    assert len(before["results"]) == 300
    # the sample by its runs' ids and the access by the rows' project: no sample or membership in the page's SQL
    page = [q["sql"].split(" WHERE ", 1)[1] for q in queries.captured_queries
            if "FROM \"catalog_catalogobject\"" in q["sql"]]
    assert page and all("sample_id" not in where and "membership" not in where for where in page), page
    assert f"\"run_id\" IN ({sample.runs.get().pk})" in page[0]
    assert _api(lab_b).get("/api/objects/", {"sample": sample.pk}).json()["results"] == []
    sample.project = Project.objects.get(name="lab-b")
    sample.curation_note = "moved"
    sample.save(update_fields=["curation_note"])  # the project not saved: the rows stay
    assert CatalogObject.objects.filter(run__sample=sample, project__name="lab-a").count() == 300
    sample.save()
    assert CatalogObject.objects.filter(run__sample=sample).exclude(project__name="lab-b").count() == 0
    after = _api(lab_b).get("/api/objects/", {"sample": sample.pk, "page_size": 1000}).json()
    assert [r["id"] for r in after["results"]] == [r["id"] for r in before["results"]]
    assert _api(_user("lab-a-member")).get("/api/objects/", {"sample": sample.pk}).json()["results"] == []
    assert _api(lab_b).get("/api/objects/", {"project": "lab-b", "page_size": 1}).json()["results"]
    run = sample.runs.get()
    sample.delete()  # (the other tests see every run through the local client) its rows go with its run
    assert not CatalogObject.objects.filter(run_id=run.pk).exists()
    with connection.cursor() as cursor:  # (Django's cascade, as the rows have no foreign-key constraint)
        constraints = connection.introspection.get_constraints(cursor, CatalogObject._meta.db_table)
    assert not [c for c in constraints.values() if c["foreign_key"]], constraints
    from sxtseg.catalog.database import refresh_sqlite_statistics

    refresh_sqlite_statistics(connection)  # as after an ingest (SQLite; nothing on PostgreSQL)


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite only: a migration run on a database of its own")
def test_migration_0004_fills_the_object_rows_project(tmp_path):
    """Rows stored before migration 0004 get their sample's project; SQLite's (class_name, id) index survives."""
    import sqlite3

    database = tmp_path / "old.sqlite3"
    script = f"""
from sxtseg.catalog.database import configure
configure(db={str(database)!r}, migrate=False)
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

call_command("migrate", "catalog", "0003", verbosity=0)
old = MigrationExecutor(connection).loader.project_state(("catalog", "0003_object_class_id_index")).apps
Project, Sample, Run, Obj = (old.get_model("catalog", n) for n in ("Project", "Sample", "Run", "CatalogObject"))
runs = []
for k in (1, 2):
    sample = Sample.objects.create(project=Project.objects.create(name=f"p{{k}}"), name="s", modality="sxt")
    runs.append(Run.objects.create(sample=sample, content_sha256=str(k) * 64, kind="run", results_dir="",
                                   sxtseg_version="0"))
box = dict.fromkeys(["centroid_z_nm", "centroid_y_nm", "centroid_x_nm", "bbox_z0_nm", "bbox_y0_nm", "bbox_x0_nm",
                     "bbox_z1_nm", "bbox_y1_nm", "bbox_x1_nm"], 0.0)
for k in range(10):
    Obj.objects.create(run=runs[k % 2], label=k, class_id=6, class_name="dmv", voxel_count=1, volume_um3=0.1, **box)
call_command("migrate", "catalog", verbosity=0)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    db = sqlite3.connect(database)
    pairs = db.execute("SELECT r.sample_id, s.project_id, o.project_id FROM catalog_catalogobject o JOIN catalog_run r "
                       "ON r.id = o.run_id JOIN catalog_sample s ON s.id = r.sample_id ORDER BY o.id").fetchall()
    assert len(pairs) == 10 and len({p[1] for p in pairs}) == 2 and all(p[1] == p[2] for p in pairs)
    indexes = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                               "AND tbl_name = 'catalog_catalogobject'")}
    assert {"catalog_object_class_name_id", "catalog_object_project_id", "catalog_object_run_id"} <= indexes
    column = [c for c in db.execute("PRAGMA table_info(catalog_catalogobject)") if c[1] == "project_id"]
    assert column and column[0][3] == 1  # NOT NULL


def test_cli_share_with_a_group(loaded, capsys):
    """`sxtseg catalog share` gives a group's users a role on a project; --revoke takes it back."""
    from sxtseg.cli import main

    database = ["--url", POSTGRES_URL] if POSTGRES_URL else ["--db", os.environ["SXTSEG_CATALOG_DB"]]
    newcomer, colleague = _user("newcomer"), _user("colleague")
    sample = _api(loaded["owner"]).get("/api/samples/", {"project": "infection"}).json()["results"][0]
    path, curate = f"/api/samples/{sample['id']}/", {"curation": "accepted"}
    assert _api(newcomer).get(path).status_code == 404
    assert main(["catalog", "share", "infection", "--group", "imaging-lab", "--user", "newcomer", *database]) == 0
    assert "shared with group 'imaging-lab' as collaborator (newcomer)" in capsys.readouterr().out
    assert _api(newcomer).get(path).status_code == 200
    assert _api(newcomer).patch(path, curate, format="json").status_code == 403  # collaborators read only
    assert _api(colleague).get(path).status_code == 404  # not in the group
    assert main(["catalog", "share", "infection", "--group", "imaging-lab", "--role", "member", *database]) == 0
    newcomer.refresh_from_db()
    assert _api(newcomer).patch(path, curate, format="json").status_code == 200
    assert main(["catalog", "share", "infection", "--group", "imaging-lab", "--revoke", *database]) == 0
    assert _api(newcomer).get(path).status_code == 404
    assert main(["catalog", "share", "infection", "--group", "g", "--user", "nobody", *database]) == 2
    assert main(["catalog", "share", "no-such-project", "--group", "g", *database]) == 2
    assert "no catalog project 'no-such-project'" in capsys.readouterr().err


def test_api_bad_input_is_400_naming_the_field(loaded, tmp_path):
    api = _api(loaded["owner"])
    missing = api.post("/api/runs/", {"results_dir": str(tmp_path / "nowhere"), "project": "infection"},
                       format="json")
    assert missing.status_code == 400 and "nowhere: no such results folder" in missing.json()["detail"]
    malformed = api.post("/api/runs/", {"project": 5}, format="json")
    assert malformed.status_code == 400 and "results_dir" in malformed.json()
    unknown = api.post("/api/runs/", {"results_dir": str(tmp_path), "project": "infection",
                                      "conditions": {"colour": "red"}}, format="json")
    assert unknown.status_code == 400 and "colour" in json.dumps(unknown.json())
    assert api.get("/api/samples/", {"m.dmv_count__between": 3}).status_code == 400
    # a project name with a dot (schemathesis sent "auto, cpu, cuda..."): the API's JSON 404, not Django's HTML one
    for name in ("no.such.project", "auto, cpu, cuda..."):
        answer = api.get(f"/api/projects/{name}/")
        assert answer.status_code == 404 and answer["Content-Type"] == "application/json", answer.content[:80]


def test_schema_and_docs(loaded):
    api = _api(loaded["owner"])
    schema = api.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert {"/api/samples/", "/api/runs/", "/api/objects/", "/api/aggregate/"} <= set(paths)
    # every operation documents the error answers it can give
    assert {"400", "401", "403", "404"} <= set(paths["/api/runs/"]["post"]["responses"])
    # an uncurated sample answers curated_by: null (schemathesis found it undeclared)
    sample = json.loads(schema.content)["components"]["schemas"]["Sample"]["properties"]["curated_by"]
    assert sample.get("nullable") is True
    assert api.get("/api/docs/").status_code == 200


@pytest.mark.skipif(bool(POSTGRES_URL), reason="the API contract is checked once, on the SQLite run")
def test_schemathesis_over_the_openapi_schema(loaded):
    """Generated requests for every documented operation (bounded examples), as the project's owner.

    No 5xx, every response matches its documented schema and status codes, content types and headers.
    The requests run in-process against the WSGI app inside one transaction that is rolled back:
    a throwaway database state, the module's data untouched.
    """
    schemathesis = pytest.importorskip("schemathesis") if not ON_CI else __import__("schemathesis")
    from django.core import signals
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections, transaction
    from hypothesis import HealthCheck, given, settings
    from rest_framework.authtoken.models import Token
    from schemathesis.checks import positive_data_acceptance

    from sxtseg.catalog.models import CatalogObject, Run, Sample

    token = Token.objects.get_or_create(user=loaded["owner"])[0].key
    headers = {"Authorization": f"Token {token}"}
    failures, calls = {}, []
    run_id = loaded["runs"]["cell1"][0]["run_id"]
    real_ids = {"projects": "infection", "runs": run_id, "samples": Run.objects.get(pk=run_id).sample_id,
                "objects": CatalogObject.objects.filter(run_id=run_id).values_list("pk", flat=True).first()}
    counts = [model.objects.count() for model in (Run, Sample, CatalogObject)]

    class Rollback(Exception):
        pass

    # Django closes a connection that is inside a transaction at the start and end of each request:
    # unhook that for the test, as Django's own test client does
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        with pytest.raises(Rollback), transaction.atomic():
            schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
            for result in schema.get_all_operations():
                operation = result.ok()

                @given(case=operation.as_strategy())
                @settings(max_examples=8, deadline=None, database=None, derandomize=True,
                          suppress_health_check=list(HealthCheck))
                def check(case):
                    response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
                    calls.append((case.method, response.status_code))

                # generated ids rarely exist: each operation on a path also gets the module's real rows
                explicit = []
                if "{id}" in operation.path or "{name}" in operation.path:
                    key = "name" if "{name}" in operation.path else "id"
                    value = real_ids[operation.path.split("/")[2]]
                    bodies = [{}, {"curation": "accepted", "tags": ["checked"]}] if operation.method == "patch" else [None]
                    explicit = [operation.Case(path_parameters={key: value},
                                               **({} if body is None else {"body": body, "media_type": "application/json"}))
                                for body in bodies]
                try:
                    check()
                    for case in explicit:
                        response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
                        assert response.status_code == 200, (case.method, case.formatted_path, response.text[:300])
                        calls.append((case.method, response.status_code))
                except Exception as error:  # noqa: BLE001 - every operation is tried, failures reported together
                    failures[operation.label] = f"{type(error).__name__}: {str(error)[:1500]}"
            raise Rollback
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    assert not failures, "\n\n".join(f"{label}\n{message}" for label, message in failures.items())
    assert len(calls) > 50 and {("GET", 200), ("POST", 201), ("PATCH", 200), ("GET", 404)} <= set(calls)
    assert [model.objects.count() for model in (Run, Sample, CatalogObject)] == counts  # rolled back


def _generic_object_list():
    """GET /api/objects/ as DRF's generic list answered it before the catalog's own path: django-filter's backend
    (a FilterSet per request) and ObjectSerializer over model instances (select_related run)."""
    from django_filters.rest_framework import DjangoFilterBackend
    from rest_framework.filters import OrderingFilter
    from rest_framework.mixins import ListModelMixin

    from sxtseg.catalog.api.views import ObjectViewSet

    class GenericObjectViewSet(ObjectViewSet):
        filter_backends = [DjangoFilterBackend, OrderingFilter]

        def list(self, request, *args, **kwargs):
            return ListModelMixin.list(self, request, *args, **kwargs)

    return GenericObjectViewSet.as_view({"get": "list"})


def _answer(view, url, user):
    """Status and body bytes of ``view`` for GET ``url`` (``/api/objects/?...``) as ``user`` (None: anonymous)."""
    from rest_framework.test import APIRequestFactory, force_authenticate

    request = APIRequestFactory().get(url)
    if user is not None:
        force_authenticate(request, user)
    response = view(request)
    response.render()
    return response.status_code, response.content


def _varied_objects(folder: Path, rows: int, sample: str, seed: int = 0) -> None:
    """Make ``folder`` (a copy of a cell's results) hold ``rows`` objects of sample ``sample``: its own rows
    drawn at random (classes kept), sizes, shapes and positions jittered, some distances missing."""
    table = pd.read_csv(folder / "objects.csv")
    rng = np.random.default_rng(seed)
    many = table.iloc[rng.integers(0, len(table), rows)].reset_index(drop=True)
    many["label"] = np.arange(1, rows + 1)
    for column in ("volume_um3", "sphericity", "centroid_x_nm", "distance_to_nucleus_nm"):
        many[column] = many[column] * rng.uniform(0.5, 1.5, rows)
    many.loc[rng.random(rows) < 0.2, "nearest_neighbour_nm"] = np.nan
    many.to_csv(folder / "objects.csv", index=False)
    summary = json.loads((folder / "summary.json").read_text())
    summary.update(sample=sample, objects=rows)
    summary["summary"].pop("dmv_count", None)
    (folder / "summary.json").write_text(json.dumps(summary))


def test_object_list_answers_as_the_generic_drf_path(loaded, results, tmp_path):
    """The object list's own path (prepared filters, rows as values) gives, byte for byte, what DRF's generic
    list gave: rows, keys and their order, cursor links, 400s for bad filters and columns, 401, other projects.

    Over the module's objects and 240 more (a run added in a transaction rolled back at the end).
    """
    from django.db import transaction

    from sxtseg.catalog.api.views import ObjectViewSet
    from sxtseg.catalog.ingest import add_results
    from sxtseg.catalog.models import Project

    class Rollback(Exception):
        pass

    shutil.copytree(results["cell1"], tmp_path / "many")
    _varied_objects(tmp_path / "many", 240, "many-objects")
    Project.objects.get_or_create(name="other")
    users = {"owner": loaded["owner"], "collaborator": _user("collaborator", "infection", "collaborator"),
             "stranger": _user("stranger", "other", "member"), "anonymous": None}
    ours, generic = ObjectViewSet.as_view({"get": "list"}), _generic_object_list()
    with pytest.raises(Rollback), transaction.atomic():
        run_id = add_results(tmp_path / "many", "infection", user=loaded["owner"])[0]["run_id"]
        sample_id = _api(loaded["owner"]).get(f"/api/runs/{run_id}/").json()["sample"]
        queries = ["", "page_size=7", "page_size=1000", "class_name=dmv&volume_um3__gte=0.001&page_size=100",
                   f"run={run_id}&page_size=1000", f"sample={sample_id}", f"run={run_id}.7", "run=abc",
                   "project=infection", "project=clinic", "project=other", "class_name=", "volume_um3__gte=",
                   "touches_border=true", "touches_border=False", "touches_border=1", "touches_border=maybe",
                   "label=1.5", "label=3&class_id=6", "label__gte=2", "volume_um3__gte=abc", "volume_um3__gte=1e60",
                   "volume_um3__gte=NaN", "sphericity__lt=abc&label=x&class_name=dmv&volume_um3__gte=abc",
                   "volume_um3__lt=1&volume_um3__lt=abc", "volume_um3__lt=abc&volume_um3__lt=1",
                   "distance_to_nucleus_nm__lt=2000&sphericity__gt=0.5&nearest_neighbour_nm__gte=0",
                   "fields=id,volume_um3,ome_zarr,sample", "fields=thumbnail, run", "fields=id,nonsense", "fields=,",
                   "fields=class_name&class_name=nonsense", "ordering=-id&page_size=5", "ordering=volume_um3",
                   "cursor=garbage", "cursor=garbage&fields=nonsense", "volume_um3__gte=abc&cursor=garbage",
                   "page_size=0", "page_size=abc", "page_size=20000"]
        for name, user in users.items():
            for query in queries:
                expected = _answer(generic, f"/api/objects/?{query}", user)
                assert _answer(ours, f"/api/objects/?{query}", user) == expected, (name, query, expected)
        status, body = _answer(ours, "/api/objects/?volume_um3__gte=abc&label=x", loaded["owner"])
        assert status == 400 and json.loads(body) == {"label": ["Enter a number."],
                                                      "volume_um3__gte": ["Enter a number."]}
        status, body = _answer(ours, f"/api/objects/?run={run_id}&page_size=1000", loaded["owner"])
        assert len(json.loads(body)["results"]) == 240
        assert _answer(ours, "/api/objects/", users["stranger"]) == (200, b'{"next":null,"previous":null,"results":[]}')
        # every page of a query, forward then back, through the cursor links
        for query in ("class_name=dmv&page_size=7", "volume_um3__gte=0.01&page_size=50",
                      "ordering=-id&page_size=30&fields=id,label"):
            url, pages = f"/api/objects/?{query}", 0
            while url:
                status, body = _answer(generic, url, loaded["owner"])
                assert status == 200 and _answer(ours, url, loaded["owner"]) == (status, body), url
                page, pages = json.loads(body), pages + 1
                url = page["next"] or None
            assert pages >= 3, query
            while page["previous"]:
                status, body = _answer(generic, page["previous"], loaded["owner"])
                assert _answer(ours, page["previous"], loaded["owner"]) == (status, body)
                page = json.loads(body)
        raise Rollback


def test_object_rows_are_the_serializers(loaded):
    """ObjectRows writes every object, with every field (None values too), as ObjectSerializer does."""
    from sxtseg.catalog.api.serializers import OBJECT_FIELDS, ObjectRows, ObjectSerializer, object_rows
    from django.db import transaction

    from sxtseg.catalog.models import CatalogObject, Run

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        # one run without an OME-Zarr among its artefacts: its rows' ome_zarr is None
        run = Run.objects.order_by("id").first()
        Run.objects.filter(pk=run.pk).update(artefacts={k: v for k, v in run.artefacts.items() if k != "ome_zarr"})
        objects = CatalogObject.objects.select_related("run").order_by("id")
        expected = json.loads(json.dumps(ObjectSerializer(objects, many=True).data))
        got = ObjectRows(OBJECT_FIELDS).serialise(object_rows(objects))
        assert len(got) == len(expected) >= 5 and any(None in row.values() for row in got)
        assert {row["ome_zarr"] is None for row in got} == {True, False}
        assert [list(row.items()) for row in got] == [list(row.items()) for row in expected]
        assert [[type(v) for v in row.values()] for row in got] == [[type(v) for v in row.values()] for row in expected]
        assert ObjectRows(["thumbnail", "volume_um3"]).serialise(object_rows(objects)[:1]) == [
            {"thumbnail": expected[0]["thumbnail"], "volume_um3": expected[0]["volume_um3"]}]
        raise Rollback


def test_object_list_schema_keeps_every_filter(loaded):
    """The OpenAPI schema documents every ObjectFilter parameter, the paging and the columns, as before."""
    from sxtseg.catalog.api.filters import ObjectFilter

    schema = json.loads(_api(loaded["owner"]).get("/api/schema/", {"format": "json"}).content)
    parameters = {p["name"] for p in schema["paths"]["/api/objects/"]["get"]["parameters"]}
    assert len(ObjectFilter.base_filters) == 127
    assert parameters == set(ObjectFilter.base_filters) | {"cursor", "page_size", "ordering", "export", "fields"}


@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite only: PostgreSQL needs neither")
def test_sqlite_object_pages_have_their_index_and_statistics(loaded):
    """On SQLite, objects have the (class_name, id) index, and ingest leaves statistics for the query planner."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE name = 'catalog_object_class_name_id'")
        assert "(class_name, id)" in cursor.fetchone()[0]
        cursor.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'catalog_object_class_name_id'")
        rows = int(cursor.fetchone()[0].split()[0])
        cursor.execute("PRAGMA analysis_limit")
        assert cursor.fetchone()[0] == 0  # the connection's setting is given back
    from sxtseg.catalog.models import CatalogObject

    assert rows == CatalogObject.objects.count()


def test_object_thumbnail_links_back_to_the_image(loaded):
    api = _api(loaded["owner"])
    obj = api.get("/api/objects/", {"class_name": "dmv", "page_size": 1}).json()["results"][0]
    assert obj["ome_zarr"].startswith("file://") and obj["thumbnail"].endswith(f"/{obj['id']}/thumbnail/")
    png = api.get(obj["thumbnail"])
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_local_client_returns_the_same_numbers(loaded, results):
    from sxtseg.catalog import Client

    client = Client(os.environ.get("SXTSEG_CATALOG_URL") or os.environ["SXTSEG_CATALOG_DB"])
    objects = client.objects(run=loaded["runs"]["cell2"][0]["run_id"])
    table = pd.read_csv(results["cell2"] / "objects.csv")
    assert sorted(objects["volume_um3"].round(9)) == sorted(table["volume_um3"].round(9))
    runs = client.runs(kind="run")
    assert set(runs["sample_name"]) == {"cell1", "cell2"}
    summary = json.loads((results["cell2"] / "summary.json").read_text())
    assert float(runs.set_index("sample_name").loc["cell2", "measure.dmv_count"]) == summary["summary"]["dmv_count"]
    aggregate = client.aggregate("dmv_count", by="hours_post_infection")
    assert list(aggregate["hours_post_infection"]) == [6.0, 24.0]


def test_run_registers_as_it_finishes(loaded, tmp_path):
    import sxtseg
    from sxtseg.catalog.models import Run

    image, *_ = sxtseg.make_infected_cell(shape=(32, 96, 96), seed=3)
    image.metadata["source"] = {"path": "cell3.mrc", "reader": "phantom"}
    target = POSTGRES_URL or os.environ["SXTSEG_CATALOG_DB"]
    result = sxtseg.run(image, tmp_path / "cell3", progress=False, mirror=False, catalog=target,
                        catalog_project="piped")
    (row,) = result["catalog"]
    assert row["created"] and Run.objects.get(pk=row["run_id"]).sample.project.name == "piped"
    assert Run.objects.get(pk=row["run_id"]).results_dir == str((tmp_path / "cell3").resolve())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_createuser_serve_and_http_client(loaded, results, catalog):
    """`sxtseg catalog createuser` prints a token; a real server on loopback answers the HTTP Client."""
    from sxtseg.catalog import CatalogError, Client

    env = {**os.environ}
    database = ["--url", POSTGRES_URL] if POSTGRES_URL else ["--db", os.environ["SXTSEG_CATALOG_DB"]]
    token = subprocess.run([sys.executable, "-m", "sxtseg.cli", "catalog", "createuser", "reader", "--project",
                            "infection", "--role", "collaborator", *database], capture_output=True, text=True,
                           env=env, check=True).stdout.strip()
    assert len(token) == 40
    log_path = catalog / "serve-createuser.log"
    server, port = _start_server(database, log_path, env=env)
    try:
        client = Client(f"http://127.0.0.1:{port}", token=token)
        for _ in range(100):
            try:
                samples = client.samples()
                break
            except CatalogError:
                time.sleep(0.2)
        else:
            raise AssertionError("server did not start:\n" + log_path.read_text(errors="replace")[-3000:])
        assert set(samples["project"]) == {"infection"}
        table = pd.read_csv(results["cell1"] / "objects.csv")
        got = client.objects(run=loaded["runs"]["cell1"][0]["run_id"])
        assert len(got) == len(table)
        with pytest.raises(CatalogError, match="403"):
            client.add(results["cell1"], "infection")
        with pytest.raises(CatalogError, match="401"):
            Client(f"http://127.0.0.1:{port}").samples()
    finally:
        _stop_server(server, log_path)


def test_cli_add_errors_exit_2(catalog, tmp_path, capsys):
    from sxtseg.cli import main

    database = ["--url", POSTGRES_URL] if POSTGRES_URL else ["--db", os.environ["SXTSEG_CATALOG_DB"]]
    assert main(["catalog", "add", str(tmp_path), "--project", "infection", *database]) == 2
    assert "not an sxtseg results folder" in capsys.readouterr().err
    code = subprocess.run([sys.executable, "-m", "sxtseg.cli", "catalog", "migrate", "--url",
                           "postgresql://nobody:secret@127.0.0.1:1/none"], capture_output=True, text=True)
    assert code.returncode == 2 and "cannot be reached" in code.stderr and "secret" not in code.stderr


def _start_server(database, log_path, env=None) -> tuple[subprocess.Popen, int]:
    """`sxtseg catalog serve` on a free loopback port, its output to a file (a pipe nobody reads could fill
    and block it), so that a failure can show what it printed."""
    port = _free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "sxtseg.cli", "catalog", "serve", "--port", str(port),
                                    *database], env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, port


def _stop_server(process: subprocess.Popen, log_path) -> None:
    """Ctrl-C, as a user stops it; a server that does not stop fails the test with its output."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)  # the server prints every thread's stack (faulthandler)
        time.sleep(2)
        process.kill()
        process.wait()
        raise AssertionError("sxtseg catalog serve did not stop on SIGINT; its output and stacks:\n"
                             + Path(log_path).read_text(errors="replace")[-6000:]) from None
    assert process.returncode == 0, Path(log_path).read_text(errors="replace")[-3000:]
    assert "sxtseg catalog stopped" in Path(log_path).read_text(errors="replace")


@pytest.fixture
def server(loaded, catalog):
    """`sxtseg catalog serve` on a free loopback port, with the database of this module."""
    database = ["--url", POSTGRES_URL] if POSTGRES_URL else ["--db", os.environ["SXTSEG_CATALOG_DB"]]
    log_path = catalog / "serve-fixture.log"
    process, port = _start_server(database, log_path)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    yield {"url": url, "database": database}
    _stop_server(process, log_path)


@pytest.mark.skipif(bool(POSTGRES_URL), reason="the pages are checked once, on the SQLite run")
def test_web_pages_in_headless_chromium(server, results):
    """Log in, filter the samples, open one (quick look and table shown), curate it, plot a comparison."""
    playwright = pytest.importorskip("playwright.sync_api") if not ON_CI else __import__(
        "playwright.sync_api", fromlist=["sync_playwright"])
    if not Path("/usr/bin/chromium").exists():
        if ON_CI:
            pytest.fail("Debian chromium is not installed (/usr/bin/chromium)")
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium)")
    subprocess.run([sys.executable, "-m", "sxtseg.cli", "catalog", "createuser", "curator", "--password", "pw-1234",
                    "--project", "infection", "--role", "member", *server["database"]], check=True,
                   capture_output=True)
    shots = Path(os.environ.get("SXTSEG_SCREENSHOTS", "") or results["cell1"].parent / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(server["url"] + "/samples/")
        assert "/accounts/login/" in page.url  # reading needs a login
        page.fill("#id_username", "curator")
        page.fill("#id_password", "pw-1234")
        page.click("button[type=submit]")
        page.wait_for_url("**/samples/")
        assert page.locator("#samples tbody tr").count() == 2
        assert "thin_cell" in page.locator("#samples tbody tr td.flags").first.inner_text()  # the 32-slice cells
        page.fill("input[name=flag]", "coarse_voxels")  # no sample has it
        page.click("#apply-filters")
        page.wait_for_load_state()
        assert "No sample matches" in page.inner_text("#samples")
        page.fill("input[name=flag]", "thin_cell")
        page.fill("input[name=hpi_min]", "12")
        page.click("#apply-filters")
        page.wait_for_load_state()
        rows = page.locator("#samples tbody tr")
        assert rows.count() == 1 and "cell2" in rows.first.inner_text()
        page.screenshot(path=str(shots / "catalog_samples.png"))
        rows.first.locator("a").first.click()
        page.wait_for_selector("#objects")
        # the image loads after the table is parsed: wait until it has loaded or failed (complete),
        # then check that it loaded (a failed image is complete with naturalWidth 0)
        page.wait_for_function("document.querySelector('#quicklook') && document.querySelector('#quicklook').complete")
        assert page.evaluate("document.querySelector('#quicklook').naturalWidth") > 0
        table = pd.read_csv(results["cell2"] / "objects.csv")
        assert page.locator("#objects tbody tr").count() == len(table)
        assert "thin_cell" in page.inner_text("#quality")  # the run's quality flags, with their messages
        page.select_option("select[name=curation]", "accepted")
        page.fill("input[name=curation_note]", "clean segmentation")
        page.click("#curate button")
        page.wait_for_load_state()
        assert page.inner_text("#curation-status") == "accepted"
        page.screenshot(path=str(shots / "catalog_sample.png"), full_page=True)
        page.goto(server["url"] + "/compare/?measure=dmv_count&by=hours_post_infection")
        svg = page.locator("#plot-figure svg")
        assert svg.count() == 1 and svg.bounding_box()["width"] > 100
        assert "6.0: 1 run(s)" in page.inner_text("main") and "24.0: 1 run(s)" in page.inner_text("main")
        page.screenshot(path=str(shots / "catalog_compare.png"))
        browser.close()
    from sxtseg.catalog.models import Sample

    curated = Sample.objects.get(project__name="infection", name="cell2")
    assert (curated.curation, curated.curated_by.username) == ("accepted", "curator")


def _object_rows(folder: Path, rows: int) -> None:
    """A results folder of ``rows`` objects (the cell1 folder's first row repeated with new labels)."""
    table = pd.read_csv(folder / "objects.csv")
    big = table.iloc[np.zeros(rows, int)].reset_index(drop=True)
    big["label"] = np.arange(1, rows + 1)
    big["class_id"] = 2
    big.to_csv(folder / "objects.csv", index=False)
    summary = json.loads((folder / "summary.json").read_text())
    summary["objects"] = rows
    summary["summary"].pop("dmv_count", None)
    (folder / "summary.json").write_text(json.dumps(summary))


def _catalog_state(project: str) -> dict:
    """Everything stored for ``project``, by sample name, without ids and timestamps: sample fields, runs,
    measures and object rows (in id order)."""
    from django.db import connection

    from sxtseg.catalog.models import OBJECT_COLUMNS, Measure, Run, Sample

    state = {}
    for sample in Sample.objects.filter(project__name=project).order_by("name"):
        runs = []
        for run in Run.objects.filter(sample=sample).order_by("content_sha256"):
            fields = {f.attname: getattr(run, f.attname) for f in Run._meta.fields
                      if f.attname not in ("id", "sample_id", "created_at")}
            measures = sorted(Measure.objects.filter(run=run).values_list("name", "value", "unit"))
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT class_name, {', '.join(OBJECT_COLUMNS)} FROM catalog_catalogobject "
                               "WHERE run_id = %s ORDER BY id", [run.pk])
                rows = cursor.fetchall()
            runs.append((fields, measures, rows))
        sample_fields = {f.attname: getattr(sample, f.attname) for f in Sample._meta.fields
                         if f.attname not in ("id", "project_id", "created_at")}
        state[sample.name] = (sample_fields, runs)
    return state


def _many_folders(results, tmp_path: Path, count: int, prefix: str) -> list[Path]:
    folders = []
    for k in range(count):
        folder = tmp_path / f"{prefix}{k}"
        shutil.copytree(results["cell1"], folder)
        _varied_objects(folder, 1500 + 700 * k, f"{prefix}-{k}", seed=20 + k)
        folders.append(folder)
    return folders


def test_add_many_stores_what_add_results_stores(loaded, results, tmp_path):
    """``add_many`` (the next folder read while one is written; on PostgreSQL over 3 connections) stores,
    value for value, what adding the folders one by one with ``add_results`` stores; in the folders'
    order; adding them again changes nothing."""
    from django.db import connection

    from sxtseg.catalog.database import refresh_sqlite_statistics
    from sxtseg.catalog.ingest import add_many, add_results
    from sxtseg.catalog.models import CatalogObject, Project, Run

    folders = _many_folders(results, tmp_path, 6, "many")
    hours = [6, 12, 24, 48, 6, 12]
    try:
        for k, folder in enumerate(folders):
            add_results(folder, "many", user=loaded["owner"], tags=["t"], fields={"grid": "G1"},
                        conditions={"cell_line": "VeroE6", "hours_post_infection": hours[k]})
        one_by_one = _catalog_state("many")
        Project.objects.filter(name="many").delete()
        assert _catalog_state("many") == {}
        done = list(add_many(folders, "many", user=loaded["owner"], tags=["t"], fields=["grid=G1"], jobs=3,
                             conditions=lambda k: {"cell_line": "VeroE6", "hours_post_infection": hours[k]}))
        assert [folder for folder, _ in done] == folders
        assert all(len(runs) == 1 and runs[0]["created"] for _, runs in done)
        assert [runs[0]["sample"] for _, runs in done] == [f"many-{k}" for k in range(6)]
        assert _catalog_state("many") == one_by_one
        before = (Run.objects.count(), CatalogObject.objects.count())
        again = list(add_many(folders, "many", user=loaded["owner"], jobs=3))
        assert [runs[0]["created"] for _, runs in again] == [False] * 6
        assert [runs[0]["run_id"] for _, runs in again] == [runs[0]["run_id"] for _, runs in done]
        assert (Run.objects.count(), CatalogObject.objects.count()) == before
    finally:  # the other tests count the rows of the module's folders
        Project.objects.filter(name="many").delete()
        refresh_sqlite_statistics(connection)


def test_add_many_stops_at_the_first_bad_folder(loaded, results, tmp_path):
    """A folder that fails (checking it, or storing it) is reported with its file and row; the folders before
    it are stored and reported, nothing of it is stored, the ones after it are not started."""
    from django.db import connection

    from sxtseg.catalog.database import refresh_sqlite_statistics
    from sxtseg.catalog.ingest import add_many
    from sxtseg.catalog.models import Project, Sample
    from sxtseg.errors import SxtsegError

    good, bad, after = _many_folders(results, tmp_path, 3, "failing")
    table = pd.read_csv(bad / "objects.csv")
    table["volume_um3"] = table["volume_um3"].astype(object)
    table.loc[1, "volume_um3"] = "lots"
    table.to_csv(bad / "objects.csv", index=False)
    try:
        for jobs in (1, 2):
            Project.objects.filter(name="failing").delete()
            stored = []
            with pytest.raises(SxtsegError, match=rf"{bad.name}/objects\.csv: row 3 has no valid volume_um3"):
                for folder, runs in add_many([good, bad, after], "failing", jobs=jobs):
                    stored.append(folder)
            assert stored == [good]
            assert sorted(Sample.objects.filter(project__name="failing").values_list("name", flat=True)) == [
                "failing-0"]
        # failing while it is stored (here: a sample of another modality has its name): the same
        clash = tmp_path / "clash"
        shutil.copytree(after, clash)
        _varied_objects(clash, 900, "clash", seed=3)
        Project.objects.filter(name="failing").delete()
        project = Project.objects.create(name="failing")
        Sample.objects.create(project=project, name="clash", modality="ct")
        stored = []
        with pytest.raises(SxtsegError, match=r"sample 'clash' of project 'failing' is ct, these results are sxt"):
            for folder, runs in add_many([good, clash, after], "failing", jobs=2):
                stored.append(folder)
        assert stored[0] == good and clash not in stored
        names = set(Sample.objects.filter(project__name="failing", runs__isnull=False).values_list("name", flat=True))
        # with 2 connections the folder after the failing one may have been written meanwhile: then it is reported
        assert names == {"failing-0"} | ({"failing-2"} if after in stored else set())
    finally:
        Project.objects.filter(name="failing").delete()
        refresh_sqlite_statistics(connection)


def test_cli_add_jobs(loaded, results, tmp_path, capsys):
    """`sxtseg catalog add --jobs 2` reports every folder in the given order; --jobs 0 is refused (exit 2)."""
    from django.db import connection

    from sxtseg.catalog.database import refresh_sqlite_statistics
    from sxtseg.catalog.models import Project
    from sxtseg.cli import main

    database = ["--url", POSTGRES_URL] if POSTGRES_URL else ["--db", os.environ["SXTSEG_CATALOG_DB"]]
    folders = _many_folders(results, tmp_path, 3, "cli-jobs")
    try:
        assert main(["catalog", "add", *map(str, folders), "--project", "cli-jobs", "--jobs", "2", "-q",
                     *database]) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert [line.split(":")[0] for line in lines] == [str(f) for f in folders]
        assert all(line.endswith(" added") for line in lines)
        assert main(["catalog", "add", str(folders[0]), "--project", "cli-jobs", "--jobs", "0", *database]) == 2
        assert "--jobs 0: at least 1" in capsys.readouterr().err
    finally:
        Project.objects.filter(name="cli-jobs").delete()
        refresh_sqlite_statistics(connection)


def test_killed_ingest_leaves_nothing(loaded, results, tmp_path):
    """An ingest killed while it writes the object rows leaves no run, no sample, no rows."""
    from sxtseg.catalog.models import CatalogObject, Run, Sample

    folder = tmp_path / "big"
    shutil.copytree(results["cell1"], folder)
    summary = json.loads((folder / "summary.json").read_text())
    summary["sample"] = "big-cell"
    (folder / "summary.json").write_text(json.dumps(summary))
    _object_rows(folder, 120_000)
    before = (Run.objects.count(), CatalogObject.objects.count())
    database = ["--url", POSTGRES_URL] if POSTGRES_URL else ["--db", os.environ["SXTSEG_CATALOG_DB"]]
    process = subprocess.Popen([sys.executable, "-m", "sxtseg.cli", "catalog", "add", str(folder), "--project",
                                "infection", *database], stderr=subprocess.PIPE)
    seen = b""
    while process.poll() is None:  # the progress bar of the object rows: kill once some are written
        seen += os.read(process.stderr.fileno(), 4096)
        if re.search(rb"\| *[1-9][0-9]*/120000", seen):
            break
    assert process.poll() is None, f"the ingest ended before it could be killed: {seen.decode()[-2000:]}"
    process.kill()
    process.wait()
    assert (Run.objects.count(), CatalogObject.objects.count()) == before
    assert not Sample.objects.filter(name="big-cell").exists()


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL only (run by test_catalog_suite_on_postgresql)")
def test_concurrent_ingest_on_postgresql(loaded, results, tmp_path):
    """Two processes adding the same new folders at once, in opposite orders: every run once, no row lost."""
    from sxtseg.catalog.models import CatalogObject, Run

    folders = []
    for k in range(3):
        folder = tmp_path / f"copy{k}"
        shutil.copytree(results["cell2"], folder)
        summary = json.loads((folder / "summary.json").read_text())
        summary["sample"] = f"concurrent-{k}"
        (folder / "summary.json").write_text(json.dumps(summary))
        folders.append(str(folder))
    rows = len(pd.read_csv(results["cell2"] / "objects.csv"))
    before = (Run.objects.count(), CatalogObject.objects.count())
    command = [sys.executable, "-m", "sxtseg.cli", "catalog", "add", "--project", "concurrent", "-q", "--url",
               POSTGRES_URL]
    processes = [subprocess.Popen(command[:5] + order + command[5:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for order in (folders, folders[::-1])]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    assert Run.objects.count() == before[0] + 3
    assert CatalogObject.objects.count() == before[1] + 3 * rows
    assert Run.objects.filter(sample__project__name="concurrent").values("sample").distinct().count() == 3


def test_api_json_is_drfs_values_encoded_by_orjson(loaded):
    import datetime
    import decimal

    from rest_framework.renderers import JSONRenderer

    from sxtseg.catalog.api.renderers import OrjsonRenderer

    data = {"when": datetime.datetime(2026, 12, 6, 21, 0, tzinfo=datetime.timezone.utc),
            "day": datetime.date(2026, 12, 6), "amount": decimal.Decimal("1.5"), "name": "Zellkern é ∆",
            "values": [1e-05, 0.25, 2.5e-7, 1.5e20, None, True, -3], "numpy": [np.float32(0.5), np.int64(3)],
            "nested": {"tuple": (1, 2)}}
    ours, drfs = OrjsonRenderer().render(data), JSONRenderer().render(data)
    assert json.loads(ours) == json.loads(drfs)
    assert b'"when":"2026-12-06T21:00:00Z"' in ours and "Zellkern é ∆".encode() in ours  # DRF's dates, UTF-8
    assert OrjsonRenderer().render({"v": float("nan")}) == b'{"v":null}'  # DRF's strict encoder raised here
    assert b"\n" in OrjsonRenderer().render(data, "application/json; indent=2", {"indent": 2})  # DRF's path
    response = _api(loaded["owner"]).get("/api/objects/?page_size=3", HTTP_ACCEPT="application/json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.content == OrjsonRenderer().render(response.data)
    assert json.loads(response.content) == json.loads(JSONRenderer().render(response.data))


def test_csv_export_chunks_are_the_whole_table(loaded, monkeypatch):
    import csv
    import io

    from sxtseg.catalog.api import views

    monkeypatch.setattr(views, "CSV_CHUNK_ROWS", 3)
    columns = ["id", "volume_um3", "touches_border", "sphericity"]
    for n in (0, 2, 3, 4, 7):
        rows = [(i, 0.1 * i + 1e-05, i % 2 == 0, None if i == 1 else 1 / 3) for i in range(n)]
        whole = io.StringIO()
        csv.writer(whole).writerows([columns, *rows])
        chunks = list(views._csv_chunks(columns, iter(rows)))
        assert "".join(chunks) == whole.getvalue() and len(chunks) == max(1, -(-n // 3))
    body = b"".join(_api(loaded["owner"]).get("/api/objects/", {"export": "csv"}).streaming_content)
    assert len(pd.read_csv(io.BytesIO(body))) > 3  # more rows than one chunk, through the API


def test_exports_say_how_many_rows_they_hold(loaded):
    import io

    from sxtseg.catalog.client import _complete_export
    from sxtseg.catalog.database import CatalogError

    api = _api(loaded["owner"])
    run_id = loaded["runs"]["cell1"][0]["run_id"]
    csv_answer = api.get("/api/objects/", {"export": "csv", "run": run_id})
    rows = pd.read_csv(io.BytesIO(b"".join(csv_answer.streaming_content)))
    assert int(csv_answer["X-Row-Count"]) == len(rows) > 0
    parquet = api.get("/api/objects/", {"export": "parquet", "run": run_id})
    assert int(parquet["X-Row-Count"]) == len(pd.read_parquet(io.BytesIO(parquet.content))) == len(rows)
    assert _complete_export(rows, str(len(rows)), {}) is rows
    assert _complete_export(rows, str(len(rows) - 1), {}) is rows  # rows added after the count: kept
    assert _complete_export(rows, None, {}) is rows  # a server without the header
    with pytest.raises(CatalogError, match=rf"{len(rows) - 1} rows received of {len(rows)}.*stopped early"):
        _complete_export(rows.iloc[:-1], str(len(rows)), {"run": run_id})


def test_statement_timeout_setting_is_checked(monkeypatch):
    from sxtseg.catalog.settings import _seconds
    from sxtseg.errors import InvalidArgumentError

    monkeypatch.delenv("SXTSEG_CATALOG_STATEMENT_TIMEOUT_S", raising=False)
    assert _seconds("SXTSEG_CATALOG_STATEMENT_TIMEOUT_S", 30.0) == 30.0
    monkeypatch.setenv("SXTSEG_CATALOG_STATEMENT_TIMEOUT_S", "2.5")
    assert _seconds("SXTSEG_CATALOG_STATEMENT_TIMEOUT_S", 30.0) == 2.5
    for bad in ("soon", "-1", "nan", "inf"):
        monkeypatch.setenv("SXTSEG_CATALOG_STATEMENT_TIMEOUT_S", bad)
        with pytest.raises(InvalidArgumentError, match="SXTSEG_CATALOG_STATEMENT_TIMEOUT_S"):
            _seconds("SXTSEG_CATALOG_STATEMENT_TIMEOUT_S", 30.0)


def _lock_object_table():
    """A second PostgreSQL session holding the object table exclusively (until its rollback), so reads of it wait."""
    import psycopg

    from sxtseg.catalog.models import CatalogObject

    locker = psycopg.connect(POSTGRES_URL)
    locker.execute(f"LOCK TABLE {CatalogObject._meta.db_table} IN ACCESS EXCLUSIVE MODE")
    return locker


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL only (run by test_catalog_suite_on_postgresql)")
def test_request_statements_are_cancelled_after_their_time_limit(loaded):
    import threading

    from django.test import Client

    from sxtseg.catalog.models import Sample
    from sxtseg.catalog.statement_timeout import limit_request_statements

    api = _api(loaded["owner"])
    browser = Client()
    browser.force_login(loaded["owner"])
    sample = Sample.objects.get(project__name="infection", name="cell1")
    limit_request_statements(0.3)
    try:
        locker = _lock_object_table()
        release = threading.Timer(20, locker.rollback)  # without a limit the requests get their answers then
        release.start()
        try:
            answer = api.get("/api/objects/?page_size=5")
            page = browser.get(f"/samples/{sample.pk}/")
        finally:
            release.cancel()
            locker.rollback()
            locker.close()
        assert answer.status_code == 503, answer.content[:500]
        assert "time limit" in answer.json()["detail"]
        assert page.status_code == 503 and b"time limit" in page.content
        assert api.get("/api/objects/?page_size=5").status_code == 200  # the worker's connection works on
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "300ms"
    finally:
        limit_request_statements(0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL only (run by test_catalog_suite_on_postgresql)")
def test_gunicorn_deployment_on_postgresql(loaded, results):
    """The shared deployment of docs/catalog.md: gunicorn with the catalog's config, 3 workers, PostgreSQL, no debug.

    16 concurrent clients get the same answers; a write through one worker is read through the
    others; the admin's static files are served; SIGTERM stops it cleanly; each worker froze its
    start-up objects (gc.freeze in the config's post_worker_init).
    """
    from concurrent.futures import ThreadPoolExecutor

    from rest_framework.authtoken.models import Token

    pytest.importorskip("gunicorn")
    token = Token.objects.get_or_create(user=loaded["owner"])[0].key
    port = _free_port()
    env = {**os.environ, "SXTSEG_CATALOG_URL": POSTGRES_URL, "SXTSEG_CATALOG_SECRET_KEY": "test-" + "k" * 50,
           "SXTSEG_CATALOG_ALLOWED_HOSTS": "127.0.0.1", "SXTSEG_CATALOG_DEBUG": "0",
           "SXTSEG_CATALOG_STATEMENT_TIMEOUT_S": "1"}
    env.pop("SXTSEG_CATALOG_DB", None)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:sxtseg.catalog.gunicorn_config",
                               "--workers", "3", "--bind", f"127.0.0.1:{port}", "sxtseg.catalog.wsgi:application"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Token {token}"}

    def get(path, auth=True):
        request = urllib.request.Request(base + path, headers=headers if auth else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    try:
        for _ in range(200):
            try:
                if get("/api/projects/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            server.kill()
            raise AssertionError(server.stdout.read().decode()[-3000:])
        run_id = loaded["runs"]["cell1"][0]["run_id"]
        path = f"/api/objects/?run={run_id}&page_size=1000"
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: get(path), range(48)))
        assert {status for status, _ in answers} == {200} and len({body for _, body in answers}) == 1
        assert len(json.loads(answers[0][1])["results"]) == len(pd.read_csv(results["cell1"] / "objects.csv"))
        assert get(path, auth=False)[0] == 401
        sample = json.loads(get("/api/samples/?project=infection&name=cell1")[1])["results"][0]
        note = f"checked through gunicorn {port}"
        patch = urllib.request.Request(f"{base}/api/samples/{sample['id']}/", method="PATCH",
                                       data=json.dumps({"curation_note": note}).encode(),
                                       headers={**headers, "Content-Type": "application/json"})
        with urllib.request.urlopen(patch, timeout=30) as response:
            assert response.status == 200
        with ThreadPoolExecutor(6) as pool:  # several requests, so more than one worker answers
            notes = {json.loads(body)["curation_note"] for _, body in
                     pool.map(lambda _: get(f"/api/samples/{sample['id']}/"), range(12))}
        assert notes == {note}
        status, css = get("/static/admin/css/base.css", auth=False)
        assert status == 200 and b"font-family" in css
        status, page = get("/accounts/login/", auth=False)
        assert status == 200 and b"csrfmiddlewaretoken" in page
        status, missing = get("/no-such-page/")
        assert status == 404 and b"Traceback" not in missing  # no debug pages in production
        locker = _lock_object_table()  # a query that cannot finish: cut at 1 s (urlopen would give up at 30)
        try:
            status, body = get(path)
        finally:
            locker.rollback()
            locker.close()
        assert status == 503 and "SXTSEG_CATALOG_STATEMENT_TIMEOUT_S" in json.loads(body)["detail"]
        assert get(path)[0] == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    log = server.stdout.read().decode(errors="replace")
    assert log.count("objects frozen (gc.freeze)") == 3, log[-3000:]  # the config's post_worker_init, each worker


@pytest.mark.skipif(bool(POSTGRES_URL), reason="this is the SQLite run; it starts the PostgreSQL one")
def test_catalog_suite_on_postgresql(results):
    """This module again, against a throwaway PostgreSQL cluster started on a loopback port.

    Left out there: the tests that do not depend on the database engine (the schema, thumbnails, the
    HTTP server, CLI argument errors), which the SQLite run covers.
    """
    if shutil.which("pg_virtualenv") is None:
        message = "PostgreSQL (Debian postgresql + postgresql-common's pg_virtualenv) is not installed"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    script = (f"SXTSEG_CATALOG_TEST_URL=postgresql://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$PGDATABASE "
              f"SXTSEG_CATALOG_TEST_RESULTS={results['cell1'].parent} "
              f"{sys.executable} -m pytest -q -p no:cacheprovider -p no:warnings --tb=short -x {__file__} -k 'not suite_on_postgresql and not schema_and_docs and not thumbnail and not createuser_serve and not cli_add_errors'"
              " 2>&1; echo exit=$?")
    done = subprocess.run(["pg_virtualenv", "--", "sh", "-c", script], capture_output=True, text=True, timeout=900)
    output = done.stdout + done.stderr
    assert "exit=0" in output, output[-4000:]
    assert " passed" in output
