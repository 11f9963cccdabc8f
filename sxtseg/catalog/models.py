"""The catalog's tables, in XNAT's terms: project, sample (subject + acquisition), run (assessor), measures, objects.

- :class:`Project` with :class:`Membership` (owner, member, collaborator) and
  :class:`GroupShare` (a Django group given a role on the project);
- :class:`Sample`: one SXT cell, CT exam or CXR image, with its condition
  fields, free key-value ``fields`` and ``tags``, and its curation status;
- :class:`Run`: one analysis of a sample, immutable once complete, keyed by
  the content hash of its results folder (adding it twice changes nothing);
- :class:`Measure`: the run's summary numbers, one row each (queryable by
  name and value, not an opaque blob);
- :class:`CatalogObject`: the per-object rows of ``objects.csv`` in physical units.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models

__all__ = ["Project", "Membership", "GroupShare", "Sample", "Run", "Measure", "CatalogObject", "ROLES", "MODALITIES"]

#: Project roles: owners administer, members read and write, collaborators read.
ROLES = (("owner", "owner"), ("member", "member"), ("collaborator", "collaborator (read only)"))
WRITE_ROLES = ("owner", "member")
MODALITIES = (("sxt", "soft X-ray tomogram"), ("ct", "CT exam"), ("cxr", "chest X-ray"))
CURATION = (("unreviewed", "unreviewed"), ("accepted", "accepted"), ("rejected", "rejected"))
INFECTION = (("", "not recorded"), ("infected", "infected"), ("mock", "mock"))


class Project(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="catalog_memberships")
    role = models.CharField(max_length=16, choices=ROLES)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]


class GroupShare(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="group_shares")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="catalog_shares")
    role = models.CharField(max_length=16, choices=ROLES)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "group"], name="one_share_per_group")]


class Sample(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="samples")
    name = models.CharField(max_length=255)
    modality = models.CharField(max_length=8, choices=MODALITIES)
    # cells
    cell_line = models.CharField(max_length=100, blank=True)
    infection = models.CharField(max_length=16, choices=INFECTION, blank=True)
    hours_post_infection = models.FloatField(null=True, blank=True)
    replicate = models.IntegerField(null=True, blank=True)
    # clinical images (anonymised)
    subject_id = models.CharField(max_length=100, blank=True)
    study_date = models.DateField(null=True, blank=True)
    fields = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    curation = models.CharField(max_length=16, choices=CURATION, default="unreviewed")
    curated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    curated_at = models.DateTimeField(null=True, blank=True)
    curation_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="sample_name_per_project")]
        indexes = [models.Index(fields=["modality"]), models.Index(fields=["hours_post_infection"]),
                   models.Index(fields=["curation"])]

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name}"

    def save(self, *args, **kwargs):
        """Save; a sample moved to another project takes its object rows along, in the same transaction.

        (``CatalogObject.project`` repeats the sample's project.  ``Sample.objects.update(project=...)``
        bypasses this: move samples one by one, through ``save()``, as the admin does.)
        """
        from django.db import transaction

        fields = kwargs.get("update_fields")
        with transaction.atomic(using=kwargs.get("using")):
            moved = (self.pk is not None and (fields is None or "project" in fields or "project_id" in fields)
                     and Sample.objects.filter(pk=self.pk).exclude(project_id=self.project_id).exists())
            super().save(*args, **kwargs)
            if moved:
                CatalogObject.objects.filter(run__sample=self).update(project_id=self.project_id)


class Run(models.Model):
    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="runs")
    content_sha256 = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=8)  # "run", "ct", "cxr": the command that wrote the folder
    results_dir = models.TextField()
    input_path = models.TextField(blank=True)
    input_fingerprint = models.CharField(max_length=64, blank=True)
    sxtseg_version = models.CharField(max_length=32)
    model_name = models.CharField(max_length=255, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    calibration = models.JSONField(default=dict, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    timings_s = models.JSONField(default=dict, blank=True)
    artefacts = models.JSONField(default=dict, blank=True)
    voxel_size_nm = models.JSONField(default=list, blank=True)
    # summary.json's quality flags ({"flag", "message"} each: a thin cell, coarse voxels...); [] for CT and X-ray
    quality = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, default="complete")
    created_at = models.DateTimeField(auto_now_add=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")

    def __str__(self) -> str:
        return f"run {self.pk} of {self.sample}"


class Measure(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="measures")
    name = models.CharField(max_length=100)
    value = models.FloatField(null=True)
    unit = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="one_value_per_measure")]
        indexes = [models.Index(fields=["name", "value"])]


#: Columns of objects.csv kept as typed, indexed columns (the others stay in the folder's table).
OBJECT_COLUMNS = (
    "label", "class_id", "voxel_count", "volume_um3", "surface_area_um2", "equivalent_diameter_nm", "sphericity",
    "principal_axis_major_nm", "principal_axis_mid_nm", "principal_axis_minor_nm", "elongation", "flatness",
    "intensity_mean", "intensity_std", "distance_to_nucleus_nm", "distance_to_cell_boundary_nm",
    "nearest_neighbour_nm", "centroid_z_nm", "centroid_y_nm", "centroid_x_nm",
    "bbox_z0_nm", "bbox_y0_nm", "bbox_x0_nm", "bbox_z1_nm", "bbox_y1_nm", "bbox_x1_nm", "touches_border")


class CatalogObject(models.Model):
    """One segmented object (organelle, compartment) of a run, in physical units.

    ``project`` repeats the project of the run's sample (``run.sample.project``), so that the
    access check is a column of the row itself, indexed with the id: a project's first page of
    objects is then an ordered walk of its own rows, however few of the table's rows they are or
    however late they came (with the check through run and sample, PostgreSQL walked the whole
    table at 10^8 rows; docs/benchmarks.md).  Ingest writes it, and :meth:`Sample.save` keeps it
    when a sample moves to another project.

    Neither ``run`` nor ``project`` has a foreign-key constraint in the database (migration
    0005): the database checked every row at the end of an ingest, a third of PostgreSQL's
    ingest time, for a run the same transaction had just made.  Django deletes a run's rows
    with the run, a sample's with the sample (``on_delete=CASCADE`` is Django's own); a run
    deleted with raw SQL would leave its rows behind, so delete through sxtseg (the admin, the
    ORM).

    The run's own index is (run_id, id), not Django's single-column one: a run's page is then
    an ordered walk of its rows too (with the project on the row and no join left, PostgreSQL
    otherwise walked the primary key for ``?run=`` at 10^8 rows: 30 s).
    """

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="object_rows", db_index=False,
                            db_constraint=False)
    project = models.ForeignKey(Project, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False,
                                related_name="+")
    label = models.BigIntegerField()
    class_id = models.SmallIntegerField()
    class_name = models.CharField(max_length=32)
    voxel_count = models.BigIntegerField()
    volume_um3 = models.FloatField()
    surface_area_um2 = models.FloatField(null=True)
    equivalent_diameter_nm = models.FloatField(null=True)
    sphericity = models.FloatField(null=True)
    principal_axis_major_nm = models.FloatField(null=True)
    principal_axis_mid_nm = models.FloatField(null=True)
    principal_axis_minor_nm = models.FloatField(null=True)
    elongation = models.FloatField(null=True)
    flatness = models.FloatField(null=True)
    intensity_mean = models.FloatField(null=True)
    intensity_std = models.FloatField(null=True)
    distance_to_nucleus_nm = models.FloatField(null=True)
    distance_to_cell_boundary_nm = models.FloatField(null=True)
    nearest_neighbour_nm = models.FloatField(null=True)
    centroid_z_nm = models.FloatField()
    centroid_y_nm = models.FloatField()
    centroid_x_nm = models.FloatField()
    bbox_z0_nm = models.FloatField()
    bbox_y0_nm = models.FloatField()
    bbox_x0_nm = models.FloatField()
    bbox_z1_nm = models.FloatField()
    bbox_y1_nm = models.FloatField()
    bbox_x1_nm = models.FloatField()
    touches_border = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["run", "label"]), models.Index(fields=["class_name", "volume_um3"]),
                   models.Index(fields=["project", "id"], name="catalog_object_project_id"),
                   models.Index(fields=["run", "id"], name="catalog_object_run_id")]  # (the run's rows in id order)
