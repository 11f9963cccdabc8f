"""Query filters, evaluated over all rows in the database (never on one page).

- Samples and runs: name (samples), modality, project, condition fields, curation, a tag
  (``tag=``), a free field (``field=key:value``), and numeric ranges on any
  summary measure: ``m.<name>__gte=``, ``__gt``, ``__lte``, ``__lt``, ``__exact``
  (e.g. ``m.dmv_count__gte=10``).
- Objects: run, sample, project, class name, and ranges on every numeric column
  (``volume_um3__gte=0.01``, ``distance_to_nucleus_nm__lt=2000``).
"""

from __future__ import annotations

import django_filters
from django.db import connection
from django.db.models import Exists, OuterRef
from rest_framework.exceptions import ValidationError

from ..models import OBJECT_COLUMNS, CatalogObject, Measure, Run, Sample

_OPERATORS = ("gte", "gt", "lte", "lt", "exact")
_NUMERIC = [c for c in OBJECT_COLUMNS if c not in ("label", "class_id", "touches_border")]


def measure_filters(params, owner: str):
    """``Exists`` conditions for the ``m.<name>__<op>=<value>`` parameters.

    ``owner`` is the path from a measure to the filtered row: ``"run"`` for
    runs, ``"run__sample"`` for samples (a sample matches when one of its runs does).
    """
    conditions = []
    for key, values in params.lists():
        if not key.startswith("m."):
            continue
        name, _, op = key[2:].partition("__")
        op = op or "exact"
        if op not in _OPERATORS or not name:
            raise ValidationError({key: f"expected m.<measure>__<{'|'.join(_OPERATORS)}>=<number>"})
        for value in values:
            try:
                number = float(value)
            except ValueError:
                raise ValidationError({key: f"{value!r} is not a number"}) from None
            condition = Measure.objects.filter(**{owner: OuterRef("pk"), "name": name, f"value__{op}": number})
            conditions.append(Exists(condition))
    return conditions


def with_tag(samples, tag: str):
    """Samples carrying ``tag`` (JSON containment, GIN-indexed on PostgreSQL; ``json_each`` on SQLite)."""
    if connection.vendor == "postgresql":
        return samples.filter(tags__contains=[tag])
    table = Sample._meta.db_table
    return samples.extra(where=[f"EXISTS (SELECT 1 FROM json_each({table}.tags) WHERE json_each.value = %s)"],
                         params=[tag])


class SampleFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__name")
    tag = django_filters.CharFilter(method="filter_tag")
    field = django_filters.CharFilter(method="filter_field", help_text="key:value of a free field")
    hours_post_infection__gte = django_filters.NumberFilter(field_name="hours_post_infection", lookup_expr="gte")
    hours_post_infection__lte = django_filters.NumberFilter(field_name="hours_post_infection", lookup_expr="lte")

    class Meta:
        model = Sample
        fields = ["name", "modality", "cell_line", "infection", "hours_post_infection", "replicate", "curation",
                  "subject_id"]

    def filter_tag(self, queryset, name, value):
        return with_tag(queryset, value)

    def filter_field(self, queryset, name, value):
        if ":" not in value:
            raise ValidationError({"field": "expected key:value"})
        key, wanted = value.split(":", 1)
        if connection.vendor == "postgresql":
            return queryset.filter(fields__contains={key: wanted})
        table = Sample._meta.db_table
        return queryset.extra(where=[f"json_extract({table}.fields, %s) = %s"], params=[f'$."{key}"', wanted])


class RunFilter(django_filters.FilterSet):
    # ids as plain numbers: an id you may not see matches nothing, as one that does not exist (no 400 tells them apart)
    sample = django_filters.NumberFilter(field_name="sample_id")
    project = django_filters.CharFilter(field_name="sample__project__name")
    modality = django_filters.CharFilter(field_name="sample__modality")

    class Meta:
        model = Run
        fields = ["kind", "status", "model_name", "sxtseg_version"]


class ObjectFilter(django_filters.FilterSet):
    run = django_filters.NumberFilter(field_name="run_id")
    sample = django_filters.NumberFilter(field_name="run__sample")
    project = django_filters.CharFilter(field_name="run__sample__project__name")

    class Meta:
        model = CatalogObject
        fields = {"class_name": ["exact"], "class_id": ["exact"], "label": ["exact"],
                  "touches_border": ["exact"], **{c: list(_OPERATORS) for c in _NUMERIC}}
