"""Runs keep the quality flags of their summary.json (``sxtseg.quality``), to show and filter them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("catalog", "0005_object_run_without_constraint")]
    operations = [
        migrations.AddField(model_name="run", name="quality", field=models.JSONField(blank=True, default=list)),
    ]
