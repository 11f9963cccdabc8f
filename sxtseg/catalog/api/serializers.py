"""JSON shapes of the catalog's rows."""

from __future__ import annotations

import functools

from django.db.models.fields.json import KeyTextTransform
from rest_framework import serializers

from ..models import OBJECT_COLUMNS, CatalogObject, Measure, Project, Run, Sample


def selected_fields(params, known) -> list[str]:
    """The fields ``?fields=a,b`` asks for, in the order of ``known``; all of them without ``?fields=``.

    Parameters
    ----------
    params : QueryDict or dict
        The request's query parameters.
    known : list of str
        The serializer's fields, in its order.

    Raises
    ------
    rest_framework.exceptions.ValidationError
        A 400 naming the unknown fields and listing the known ones.
    """
    wanted = params.get("fields")
    if not wanted:
        return list(known)
    names = {n.strip() for n in wanted.split(",") if n.strip()}
    unknown = sorted(names - set(known))
    if unknown:
        raise serializers.ValidationError({"fields": f"unknown column(s) {', '.join(unknown)}; "
                                                     f"known: {', '.join(known)}"})
    return [name for name in known if name in names]


class SelectableFieldsMixin:
    """``?fields=a,b`` keeps only those columns (unknown names are a 400 naming them)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            keep = set(selected_fields(request.query_params, list(self.fields)))
            for name in set(self.fields) - keep:
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
                  "timings_s", "artefacts", "voxel_size_nm", "quality", "status", "created_at", "measures"]
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
        return ome_zarr_of(obj.run.artefacts)

    def get_thumbnail(self, obj) -> str:
        return thumbnail_of(obj.pk)


def ome_zarr_of(artefacts: dict | None) -> str | None:
    """The ``ome_zarr`` of an object row: the URI of its run's image, from the run's ``artefacts``."""
    return (artefacts or {}).get("ome_zarr")


def thumbnail_of(pk: int) -> str:
    """The ``thumbnail`` of an object row: the path of its PNG."""
    return f"/api/objects/{pk}/thumbnail/"


#: The fields of an object row, in ObjectSerializer's order.
OBJECT_FIELDS = tuple(ObjectSerializer.Meta.fields)
#: The columns of the object table that :class:`ObjectRows` reads (``run__sample_id`` through the run's join;
#: ``run_ome_zarr``: the run's ``artefacts["ome_zarr"]``, an annotation made by :func:`object_rows`).
OBJECT_ROW_COLUMNS = ("id", "run_id", "run__sample_id", "class_name", *OBJECT_COLUMNS, "run_ome_zarr")
#: The column of a field that is not named as its field.
_ROW_COLUMN = {"run": "run_id", "sample": "run__sample_id", "ome_zarr": "run_ome_zarr"}


@functools.cache
def _object_field_formats() -> dict:
    """``to_representation`` of each field of :class:`ObjectSerializer` that holds a column value, made once.

    ``run`` is left out: the serializer writes the run's primary key as it is.
    """
    fields = ObjectSerializer().fields
    return {name: fields[name].to_representation for name in OBJECT_FIELDS
            if name not in ("run", "ome_zarr", "thumbnail")}


def object_rows(queryset):
    """``queryset`` (of :class:`CatalogObject`) as ``.values()`` rows with the :data:`OBJECT_ROW_COLUMNS`.

    The run's OME-Zarr URI comes from the run's ``artefacts`` in the same query, through the join
    that ``run__sample_id`` makes anyway (PostgreSQL's ``->>``, SQLite's ``JSON_EXTRACT``): one
    short string per row, not the run's whole JSON, and no second query for the page's runs.
    """
    return queryset.annotate(run_ome_zarr=KeyTextTransform("ome_zarr", "run__artefacts")).values(
        *OBJECT_ROW_COLUMNS)


class ObjectRows:
    """Object rows as :class:`ObjectSerializer` writes them, from the rows of :func:`object_rows`.

    The same keys in the same order, each value formatted by the serializer's
    own field (``None`` stays ``None``), without model instances or the
    run's JSON columns for every row.

    Parameters
    ----------
    fields : list of str
        The fields to write, in :data:`OBJECT_FIELDS` order (see :func:`selected_fields`).
    """

    def __init__(self, fields):
        formats = _object_field_formats()
        self.fields = list(fields)
        # per field: its key, its column in the values() row, and its format (None: written as it is)
        self._plan = [(name, _ROW_COLUMN.get(name, name), formats.get(name)) for name in self.fields]

    def serialise(self, rows) -> list[dict]:
        """One dict per row of ``rows`` (dicts with the :data:`OBJECT_ROW_COLUMNS`)."""
        return [self._row(values) for values in rows]

    def _row(self, values: dict) -> dict:
        out = {}
        for name, column, format_ in self._plan:
            if name == "thumbnail":
                out[name] = thumbnail_of(values["id"])
            else:
                value = values[column]
                out[name] = value if value is None or format_ is None else format_(value)
        return out
