"""On SQLite: an index on the objects' (class_name, id), and statistics for the query planner.

The API's object pages are in id order, usually of one class (``?class_name=dmv&volume_um3__gte=0.02``:
100 of ~140,000 matching rows). Without statistics, SQLite reads every matching row through the
(class_name, volume_um3) index and sorts them all (145 ms at 500,000 rows); with this index and
ANALYZE's statistics it walks the class's rows in id order and stops at the page's end (0.3 ms).
The index alone, or ANALYZE alone, changes nothing. Ingest refreshes the statistics
(:func:`sxtseg.catalog.database.refresh_sqlite_statistics`).

PostgreSQL needs neither (its plan for the same page takes under 1 ms), and the index would slow
its bulk ingest, so it is not made there.
"""

from django.db import migrations

from ..database import refresh_sqlite_statistics

INDEX = "catalog_object_class_name_id"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON catalog_catalogobject (class_name, id)")
        refresh_sqlite_statistics(schema_editor.connection)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_json_indexes")]
    operations = [migrations.RunPython(create, drop)]
