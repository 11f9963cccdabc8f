"""REST endpoints under ``/api/``: projects, samples, runs (with ingest), objects (with export), aggregate."""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from django.conf import settings
from django.db.models import Q
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from ..access import can_write, visible_project_ids, visible_projects, writable_projects
from ..grouping import GROUP_FIELDS, grouped_values
from ..ingest import CONDITION_FIELDS, add_results
from ..models import OBJECT_COLUMNS, CatalogObject, Membership, Project, Run, Sample
from .filters import ObjectFilter, PreparedFilterBackend, RunFilter, SampleFilter, measure_filters
from .serializers import (OBJECT_FIELDS, IngestSerializer, ObjectRows, ObjectSerializer, object_rows,
                          ProjectSerializer, RunSerializer, SampleSerializer, selected_fields)

_EXPORT_PARAMETERS = [OpenApiParameter("export", OpenApiTypes.STR, enum=["csv", "parquet"],
                                       description="stream every filtered row as CSV, or send Parquet"),
                      OpenApiParameter("fields", OpenApiTypes.STR, description="comma-separated columns to return")]


class Pages(CursorPagination):
    """Cursor pages (stable under inserts, no COUNT over millions of rows); ``?page_size=`` up to 10,000."""

    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 10_000


class ProjectViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Projects you can see; ``POST`` creates one with you as its owner."""

    serializer_class = ProjectSerializer
    pagination_class = Pages
    lookup_field = "name"
    # any name up to the next slash reaches the view, so that one with a dot (which DRF's default pattern
    # leaves to Django's HTML 404) gets the API's JSON 404 like any other unknown project
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return visible_projects(self.request.user).order_by("id")

    def perform_create(self, serializer):
        project = serializer.save()
        Membership.objects.create(project=project, user=self.request.user, role="owner")


@extend_schema(parameters=[OpenApiParameter("m.<measure>__<op>", OpenApiTypes.NUMBER,
                                            description="range on a summary measure, e.g. m.dmv_count__gte=10")])
class SampleViewSet(mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Samples of your projects, filtered over all rows; ``PATCH`` curates (status, note, tags, fields)."""

    serializer_class = SampleSerializer
    pagination_class = Pages
    filterset_class = SampleFilter
    ordering_fields = ["id", "name", "hours_post_infection", "created_at", "curation"]
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        queryset = Sample.objects.filter(project__in=visible_projects(self.request.user)).select_related(
            "project", "curated_by")
        for condition in measure_filters(self.request.query_params, "run__sample"):
            queryset = queryset.filter(condition)
        return queryset.order_by("id")

    def perform_update(self, serializer):
        sample = serializer.instance
        if not can_write(self.request.user, sample.project):
            raise PermissionDenied(f"{self.request.user}: may not curate samples of project {sample.project.name}")
        changes = {}
        if "curation" in serializer.validated_data:
            changes = {"curated_by": self.request.user, "curated_at": timezone.now()}
        serializer.save(**changes)


@extend_schema(parameters=[OpenApiParameter("m.<measure>__<op>", OpenApiTypes.NUMBER,
                                            description="range on a summary measure, e.g. m.dmv_count__gte=10")])
class RunViewSet(viewsets.ReadOnlyModelViewSet):
    """Analysis runs with their summary measures; ``POST`` registers a results folder (idempotent)."""

    serializer_class = RunSerializer
    pagination_class = Pages
    filterset_class = RunFilter
    ordering_fields = ["id", "created_at"]

    def get_queryset(self):
        queryset = Run.objects.filter(sample__project__in=visible_projects(self.request.user)).select_related(
            "sample__project").prefetch_related("measures")
        for condition in measure_filters(self.request.query_params, "run"):
            queryset = queryset.filter(condition)
        return queryset.order_by("id")

    @extend_schema(request=IngestSerializer, responses={201: RunSerializer(many=True), 200: RunSerializer(many=True)})
    def create(self, request):
        payload = IngestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        project = Project.objects.filter(name=data["project"]).first()
        if project is not None and project not in visible_projects(request.user):
            raise NotFound(f"no project {data['project']!r}")
        if project is not None and project not in writable_projects(request.user):
            raise PermissionDenied(f"{request.user}: may not write to project {data['project']}")
        unknown = sorted(set(data["conditions"]) - set(CONDITION_FIELDS))
        if unknown:
            raise ValidationError({"conditions": f"unknown condition field(s) {', '.join(unknown)}; known: "
                                                 f"{', '.join(CONDITION_FIELDS)}"})
        done = add_results(Path(data["results_dir"]), data["project"], conditions=data["conditions"],
                           fields=data["fields"], tags=data["tags"], user=request.user)
        runs = Run.objects.filter(pk__in=[d["run_id"] for d in done]).order_by("id")
        created = any(d["created"] for d in done)
        return Response(RunSerializer(runs, many=True, context={"request": request}).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


#: Header of an export's answer: the rows it holds, counted before they are sent, so that a reader can tell a
#: stream that stopped early (a cancelled query, a dropped connection) from a complete one.
ROW_COUNT_HEADER = "X-Row-Count"


def _count_export(queryset) -> int:
    """Rows ``queryset`` exports; a 400 when more than ``EXPORT_MAX_ROWS``."""
    limit = int(getattr(settings, "EXPORT_MAX_ROWS", 1_000_000))
    count = queryset[: limit + 1].count()
    if count > limit:
        raise ValidationError({"export": f"more than {limit} rows match; narrow the filters or page with the cursor"})
    return count


#: Rows of a streamed CSV export per chunk of the response (one chunk per row cost Django's streaming a third
#: of the export's time).
CSV_CHUNK_ROWS = 2000


def _csv_chunks(columns, rows):
    """The CSV text of ``columns`` (a header) then ``rows``, in chunks of :data:`CSV_CHUNK_ROWS` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    rows = iter(rows)
    while True:
        writer.writerows(itertools.islice(rows, CSV_CHUNK_ROWS))
        text = buffer.getvalue()
        if not text:
            return
        yield text
        buffer.seek(0)
        buffer.truncate()


@extend_schema(parameters=_EXPORT_PARAMETERS)
class ObjectViewSet(viewsets.ReadOnlyModelViewSet):
    """Objects (organelles, compartments) across runs, in physical units; ``?export=csv|parquet`` for all rows."""

    # (not in the docstring: drf-spectacular publishes it) The list is the hot path of the catalog (many rows,
    # many filters): it answers what DRF's generic list with ObjectFilter and ObjectSerializer would, byte for
    # byte (tests/test_catalog.py compares them), with the filters prepared once (PreparedFilterBackend) and the
    # rows read as values (ObjectRows), not model instances.

    serializer_class = ObjectSerializer
    pagination_class = Pages
    filterset_class = ObjectFilter
    filter_backends = [PreparedFilterBackend, OrderingFilter]
    ordering_fields = ["id"]

    def get_queryset(self):
        # by the rows' own project column (CatalogObject.project): no join, and an ordered walk of a project's rows
        queryset = CatalogObject.objects.select_related("run").order_by("id")
        projects = visible_project_ids(self.request.user)
        return queryset if projects is None else queryset.filter(project_id__in=projects)

    def list(self, request, *args, **kwargs):
        export = request.query_params.get("export")
        if export is None:
            return self._rows(request)
        if export not in ("csv", "parquet"):
            raise ValidationError({"export": "csv or parquet"})
        queryset = self.filter_queryset(self.get_queryset())
        count = _count_export(queryset)
        columns = self._export_columns(request)
        rows = queryset.values_list(*columns)
        if export == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            values = list(zip(*rows.iterator(chunk_size=10_000))) or [[] for _ in columns]
            table = pa.table({c: list(v) for c, v in zip(columns, values)})
            buffer = io.BytesIO()
            pq.write_table(table, buffer)
            return HttpResponse(buffer.getvalue(), content_type="application/vnd.apache.parquet",
                                headers={"Content-Disposition": 'attachment; filename="objects.parquet"',
                                         ROW_COUNT_HEADER: str(count)})
        return StreamingHttpResponse(_csv_chunks(columns, rows.iterator(chunk_size=10_000)), content_type="text/csv",
                                     headers={"Content-Disposition": 'attachment; filename="objects.csv"',
                                              ROW_COUNT_HEADER: str(count)})

    def _rows(self, request):
        """A cursor page of object rows (the whole list if the pagination is off), as ObjectSerializer writes them.

        The errors come in the generic list's order: a bad filter (400), then a bad
        cursor (404, after the filters), then an unknown ``?fields=`` name (400, after the page is read).
        """
        queryset = object_rows(self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(queryset)
        rows = ObjectRows(selected_fields(request.query_params, OBJECT_FIELDS))
        if page is None:
            return Response(rows.serialise(queryset))
        return self.get_paginated_response(rows.serialise(page))

    def _export_columns(self, request) -> list[str]:
        known = ["id", "run_id", "class_name", *OBJECT_COLUMNS]
        wanted = request.query_params.get("fields")
        if not wanted:
            return known
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        names = ["run_id" if n == "run" else n for n in names]
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValidationError({"fields": f"unknown column(s) {', '.join(unknown)}"})
        return names

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, pk=None):
        """A PNG of the object: its central slice of the run's image, cropped to the bounding box (+ margin)."""
        obj = get_object_or_404(self.get_queryset(), pk=pk)
        return HttpResponse(_thumbnail_png(obj), content_type="image/png")


def _thumbnail_png(obj: CatalogObject) -> bytes:
    # a Figure of its own, not pyplot: no global figure state shared by a server's threads
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from ...io import open_volume

    uri = (obj.run.artefacts or {}).get("ome_zarr")
    if not uri:
        raise NotFound("the run keeps no image")
    path = Path(unquote(urlparse(uri).path))
    if not path.exists():
        raise NotFound(f"the run's image {path} is no longer there")
    image = open_volume(path)
    voxel = np.array(obj.run.voxel_size_nm or image.voxel_size_in("nm"), float)
    lo = np.floor(np.array([obj.bbox_z0_nm, obj.bbox_y0_nm, obj.bbox_x0_nm]) / voxel).astype(int)
    hi = np.ceil(np.array([obj.bbox_z1_nm, obj.bbox_y1_nm, obj.bbox_x1_nm]) / voxel).astype(int)
    margin = np.maximum((hi - lo) // 2, 4)
    z = int(min(max(round(obj.centroid_z_nm / voxel[0]), 0), image.shape[0] - 1))
    y0, x0 = np.maximum(lo[1:] - margin[1:], 0)
    y1, x1 = np.minimum(hi[1:] + margin[1:], image.shape[1:])
    crop = np.asarray(image.data[z, y0:y1, x0:x1].compute(), np.float32)
    fig = Figure(figsize=(2, 2 * max(crop.shape[0], 1) / max(crop.shape[1], 1)))
    ax = fig.subplots()
    ax.imshow(crop, cmap="gray", interpolation="nearest")
    ax.add_patch(Rectangle((lo[2] - x0 - 0.5, lo[1] - y0 - 0.5), hi[2] - lo[2], hi[1] - lo[1], fill=False,
                           color="tab:red", linewidth=1))
    ax.set_axis_off()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight", pad_inches=0)
    return buffer.getvalue()


@extend_schema(parameters=[
    OpenApiParameter("measure", {"type": "string", "minLength": 1}, required=True, description="summary measure, e.g. dmv_count"),
    OpenApiParameter("by", {"type": "array", "items": {"type": "string", "enum": list(GROUP_FIELDS)}},
                     style="form", explode=False, description="comma-separated condition fields to group by"),
    OpenApiParameter("project", OpenApiTypes.STR), OpenApiParameter("modality", OpenApiTypes.STR),
    OpenApiParameter("curation", OpenApiTypes.STR)],
    responses={200: OpenApiTypes.OBJECT})
@api_view(["GET"])
def aggregate(request):
    """A summary measure grouped by condition fields: count, mean, std, median and quartiles per group."""
    measure = request.query_params.get("measure")
    if not measure:
        raise ValidationError({"measure": "required, e.g. measure=dmv_count"})
    by = [b for b in (request.query_params.get("by") or "").split(",") if b]
    unknown = sorted(set(by) - set(GROUP_FIELDS))
    if unknown:
        raise ValidationError({"by": f"unknown field(s) {', '.join(unknown)}; known: {', '.join(GROUP_FIELDS)}"})
    filters = Q()
    for key in ("project", "modality", "curation"):
        if request.query_params.get(key):
            field = "run__sample__project__name" if key == "project" else f"run__sample__{key}"
            filters &= Q(**{field: request.query_params[key]})
    out = []
    for keys, values in grouped_values(request.user, measure, by, filters).items():
        v = np.asarray(values, float)
        q1, median, q3 = np.percentile(v, [25, 50, 75])
        out.append({**dict(zip(by, keys)), "count": int(v.size), "mean": float(v.mean()),
                    "std": float(v.std(ddof=1)) if v.size > 1 else None,  # JSON has no NaN
                    "median": float(median), "q1": float(q1), "q3": float(q3), "min": float(v.min()),
                    "max": float(v.max())})
    return Response({"measure": measure, "by": by, "groups": out})
