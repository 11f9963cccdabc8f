"""The catalog's web pages, rendered on the server with Django templates (no front-end build).

- ``/`` and ``/samples/``: the sample list with filters, quick-look thumbnails and quality flags;
- ``/samples/<id>/``: one sample: quality flags, quick look, summary measures, curation form, sortable object
  table;
- ``/compare/``: a chosen measure by a chosen condition field, as a box and strip plot (SVG);
- ``/runs/<id>/quicklook.png``: a run's quick-look image.

Reading needs a logged-in project member (or ``SXTSEG_CATALOG_ANONYMOUS_READ=1``);
curating needs the owner or member role.  The same querysets as the API
(:mod:`sxtseg.catalog.access`) decide what is shown.
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .access import can_write, visible_projects
from .api.filters import samples_with_flag, with_tag
from .grouping import grouped_values
from .models import CURATION, MODALITIES, CatalogObject, Measure, Run, Sample

#: Condition fields the compare page groups by (a subset of the API's, in menu order).
COMPARE_FIELDS = ("hours_post_infection", "infection", "cell_line", "replicate", "modality", "curation")
_SORTABLE = ("label", "class_name", "volume_um3", "equivalent_diameter_nm", "sphericity", "intensity_mean",
             "distance_to_nucleus_nm")


def _reader(view):
    """Logged-in users (or anyone with anonymous read); others go to the login page."""
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated and not getattr(settings, "ANONYMOUS_READ", False):
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _samples(request):
    return Sample.objects.filter(project__in=visible_projects(request.user)).select_related("project")


@_reader
def sample_list(request):
    """Samples you can see, filtered by modality, project, infection, hours post infection, curation, tag and flag."""
    queryset = _samples(request)
    query = request.GET
    for key in ("modality", "infection", "curation", "cell_line"):
        if query.get(key):
            queryset = queryset.filter(**{key: query[key]})
    if query.get("project"):
        queryset = queryset.filter(project__name=query["project"])
    for key, lookup in (("hpi_min", "gte"), ("hpi_max", "lte")):
        if query.get(key):
            try:
                queryset = queryset.filter(**{f"hours_post_infection__{lookup}": float(query[key])})
            except ValueError:
                pass
    if query.get("tag"):
        queryset = with_tag(queryset, query["tag"])
    if query.get("flag"):  # a quality flag of one of the sample's runs (thin_cell, coarse_voxels...)
        queryset = samples_with_flag(queryset, query["flag"])
    page = Paginator(queryset.order_by("project__name", "name"), 50).get_page(query.get("page"))
    latest = {}
    for run in Run.objects.filter(sample__in=[s.pk for s in page]).order_by("sample_id", "-id"):
        latest.setdefault(run.sample_id, run)
    rows = [{"sample": s, "run": latest.get(s.pk)} for s in page]
    projects = visible_projects(request.user).order_by("name").values_list("name", flat=True)
    return render(request, "catalog/sample_list.html", {
        "rows": rows, "page": page, "query": query, "projects": projects, "modalities": MODALITIES,
        "curations": CURATION, "total": queryset.count()})


@_reader
@require_http_methods(["GET", "POST"])
def sample_detail(request, pk: int):
    """One sample: quick look, measures of its latest run, curation form, sortable object table."""
    sample = get_object_or_404(_samples(request), pk=pk)
    writable = can_write(request.user, sample.project)
    if request.method == "POST":
        if not writable:
            return HttpResponseForbidden("you may not curate samples of this project")
        status = request.POST.get("curation")
        if status not in dict(CURATION):
            return HttpResponse(f"curation must be one of {', '.join(dict(CURATION))}", status=400)
        sample.curation, sample.curation_note = status, request.POST.get("curation_note", "")
        sample.curated_by, sample.curated_at = request.user, timezone.now()
        sample.save()
        return redirect("catalog-sample", pk=sample.pk)
    run = sample.runs.order_by("-id").first()
    measures = list(run.measures.order_by("name")) if run else []
    sort = request.GET.get("sort", "label")
    key = sort.lstrip("-")
    if key not in _SORTABLE:
        sort, key = "label", "label"
    objects = CatalogObject.objects.filter(run=run).order_by(sort)[:500] if run else []
    return render(request, "catalog/sample_detail.html", {
        "sample": sample, "run": run, "measures": measures, "objects": objects, "sort": sort,
        "columns": _SORTABLE, "writable": writable, "curations": CURATION})


@_reader
def quicklook(request, pk: int):
    """The quick-look PNG of a run you can see."""
    run = get_object_or_404(Run.objects.filter(sample__project__in=visible_projects(request.user)), pk=pk)
    uri = (run.artefacts or {}).get("quicklook")
    path = Path(unquote(urlparse(uri).path)) if uri else None
    if path is None or not path.exists():
        raise Http404("this run has no quick-look image")
    return FileResponse(open(path, "rb"), content_type="image/png")


def _box_and_strip_svg(groups: dict, measure: str, by: str) -> str:
    from matplotlib.figure import Figure  # a Figure of its own, not pyplot: nothing global shared by threads

    labels = list(groups)
    fig = Figure(figsize=(max(4.0, 1.2 * len(labels) + 2), 4))
    ax = fig.subplots()
    if labels:
        ax.boxplot([groups[k] for k in labels], showfliers=False)
        rng = np.random.default_rng(0)
        for i, k in enumerate(labels, start=1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(groups[k])), groups[k], s=14, color="tab:red", alpha=0.7,
                       zorder=3)
        ax.set_xticks(range(1, len(labels) + 1), [str(k) for k in labels])
    ax.set_xlabel(by)
    ax.set_ylabel(measure)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


@_reader
def compare(request):
    """A summary measure by a condition field: box and strip plot of every run's value (SVG, drawn here)."""
    names = Measure.objects.filter(run__sample__project__in=visible_projects(request.user)).values_list(
        "name", flat=True).distinct().order_by("name")
    measure = request.GET.get("measure") or "dmv_count"
    by = request.GET.get("by") if request.GET.get("by") in COMPARE_FIELDS else "hours_post_infection"
    ordered = {keys[0]: values for keys, values in grouped_values(request.user, measure, [by]).items()}
    return render(request, "catalog/compare.html", {
        "measures": names, "measure": measure, "by": by, "group_fields": COMPARE_FIELDS,
        "svg": _box_and_strip_svg(ordered, measure, by) if ordered else "",
        "counts": [(k, len(v)) for k, v in ordered.items()]})

