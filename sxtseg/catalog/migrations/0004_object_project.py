"""Object rows carry their sample's project, indexed with the id: the access check without a join.

The API's object list filters by the projects a user may see, in id order, a page at a time. With
the check through run and sample, PostgreSQL could not tell how many rows a project holds nor
where, and walked the primary key until it had a page: at 10^8 rows a project of few or late rows
took seconds to minutes (docs/benchmarks.md, "Catalog at 10^8 object rows"). With the project
on the row and an index on (project_id, id), its page is an ordered walk of its own rows.

The run's single-column index (Django's, for the foreign key) becomes (run_id, id) for the same
reason: with no join left in the access check, PostgreSQL otherwise walked the primary key for a
run's first page (``?run=``: 30 s at 10^8 rows) instead of reading the run's rows in id order.

The column is filled from the runs' samples, then made NOT NULL. On SQLite that last step
rebuilds the table, which drops the (class_name, id) index of migration 0003 (Django does not
know it): it is made again here, with fresh statistics.
"""

from importlib import import_module

from django.db import migrations, models

# migration 0003's SQLite-only (class_name, id) index and statistics, made again after the rebuild
_CLASS_INDEX = import_module(".0003_object_class_id_index", __package__)

FILL = ("UPDATE catalog_catalogobject SET project_id = (SELECT s.project_id FROM catalog_run r "
        "JOIN catalog_sample s ON s.id = r.sample_id WHERE r.id = catalog_catalogobject.run_id)")


def fill(apps, schema_editor):
    schema_editor.execute(FILL)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_object_class_id_index")]
    operations = [
        migrations.AddField(
            model_name="catalogobject", name="project",
            field=models.ForeignKey(null=True, db_constraint=False, db_index=False,
                                    on_delete=models.DO_NOTHING, related_name="+", to="catalog.project")),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="catalogobject", name="project",
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=models.DO_NOTHING, related_name="+", to="catalog.project")),
        migrations.AlterField(
            model_name="catalogobject", name="run",
            field=models.ForeignKey(db_index=False, on_delete=models.CASCADE, related_name="object_rows",
                                    to="catalog.run")),
        migrations.AddIndex(
            model_name="catalogobject",
            index=models.Index(fields=["project", "id"], name="catalog_object_project_id")),
        migrations.AddIndex(
            model_name="catalogobject",
            index=models.Index(fields=["run", "id"], name="catalog_object_run_id")),
        migrations.RunPython(_CLASS_INDEX.create, migrations.RunPython.noop),
    ]
