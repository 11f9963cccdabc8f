"""Object rows keep their run's id without a foreign-key constraint (as they keep their project's).

The database checked the constraint for every object row at the end of each ingest's transaction:
on PostgreSQL a third of an ingest's server time, for rows whose run the same transaction had just
made. Ingest through COPY of 100 folders of 10,000 rows (4 connections) went from 79,718 and 87,570
to 103,528 and 111,643 rows/s (docs/benchmarks.md, "Catalog"). Django still deletes a run's rows
with the run (``on_delete=CASCADE`` is Django's own); a run deleted with raw SQL leaves them behind.

On SQLite dropping the constraint rebuilds the table, which drops migration 0003's raw
(class_name, id) index, so it is made again with fresh statistics (as in 0004).
"""

from importlib import import_module

from django.db import migrations, models

_CLASS_INDEX = import_module(".0003_object_class_id_index", __package__)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0004_object_project")]
    operations = [
        migrations.AlterField(
            model_name="catalogobject", name="run",
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=models.CASCADE,
                                    related_name="object_rows", to="catalog.run")),
        migrations.RunPython(_CLASS_INDEX.create, migrations.RunPython.noop),
    ]
