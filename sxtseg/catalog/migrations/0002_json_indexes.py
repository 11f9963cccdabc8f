"""GIN indexes on the samples' tags and free fields, on PostgreSQL (SQLite has no such index)."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE INDEX IF NOT EXISTS catalog_sample_tags_gin ON catalog_sample USING gin (tags)")
        schema_editor.execute("CREATE INDEX IF NOT EXISTS catalog_sample_fields_gin ON catalog_sample "
                              "USING gin (fields)")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS catalog_sample_tags_gin")
        schema_editor.execute("DROP INDEX IF EXISTS catalog_sample_fields_gin")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
