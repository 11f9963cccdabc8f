"""JSON shapes of the catalog's rows."""

from __future__ import annotations

from rest_framework import serializers

from ..models import OBJECT_COLUMNS, CatalogObject, Measure, Project, Run, Sample


class SelectableFieldsMixin:
    """``?fields=a,b`` keeps only those columns (unknown names are a 400 naming them)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        wanted = request.query_params.get("fields") if request is not None else None
        if wanted:
            names = [n.strip() for n in wanted.split(",") if n.strip()]
            unknown = sorted(set(names) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({"fields": f"unknown column(s) {', '.join(unknown)}; "
                                                             f"known: {', '.join(self.fields)}"})
            for name in set(self.fields) - set(names):
                self.fields.pop(name)


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "description", "created_at"]


class MeasureSerializer(serializers.ModelSerializer):
    class Meta:
        model = Measure
        fields = ["name", "value", "unit"]


class SampleSerializer(SelectableFieldsMixin, serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="name", read_only=True)
    curated_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Sample
        fields = ["id", "project", "name", "modality", "cell_line", "infection", "hours_post_infection",
                  "replicate", "subject_id", "study_date", "fields", "tags", "curation", "curated_by",
                  "curated_at", "curation_note", "created_at"]
        read_only_fields = [f for f in fields if f not in ("curation", "curation_note", "tags", "fields")]


class RunSerializer(SelectableFieldsMixin, serializers.ModelSerializer):
    sample = serializers.PrimaryKeyRelatedField(read_only=True)
    sample_name = serializers.CharField(source="sample.name", read_only=True)
    project = serializers.CharField(source="sample.project.name", read_only=True)
    measures = MeasureSerializer(many=True, read_only=True)

    class Meta:
        model = Run
        fields = ["id", "sample", "sample_name", "project", "kind", "content_sha256", "results_dir", "input_path",
                  "input_fingerprint", "sxtseg_version", "model_name", "weights_sha256", "calibration", "parameters",
                  "timings_s", "artefacts", "voxel_size_nm", "status", "created_at", "measures"]
        read_only_fields = fields


class IngestSerializer(serializers.Serializer):
    """``POST /api/runs/``: register a results folder on the server's file system."""

    results_dir = serializers.CharField(help_text="folder written by sxtseg run, sxtseg ct or sxtseg cxr")
    project = serializers.SlugField()
    conditions = serializers.DictField(required=False, default=dict)
    fields = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    tags = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class ObjectSerializer(SelectableFieldsMixin, serializers.ModelSerializer):
    sample = serializers.IntegerField(source="run.sample_id", read_only=True)
    ome_zarr = serializers.SerializerMethodField(help_text="URI of the run's OME-Zarr image with its labels")
    thumbnail = serializers.SerializerMethodField(help_text="a crop of the object: /api/objects/{id}/thumbnail/")

    class Meta:
        model = CatalogObject
        fields = ["id", "run", "sample", "class_name", *OBJECT_COLUMNS, "ome_zarr", "thumbnail"]
        read_only_fields = fields

    def get_ome_zarr(self, obj) -> str | None:
        return (obj.run.artefacts or {}).get("ome_zarr")

    def get_thumbnail(self, obj) -> str:
        return f"/api/objects/{obj.pk}/thumbnail/"
