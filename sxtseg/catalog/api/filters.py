"""Query filters, evaluated over all rows in the database (never on one page).

- Samples and runs: name (samples), modality, project, condition fields, curation, a tag
  (``tag=``), a free field (``field=key:value``), a quality flag of a run (``flag=thin_cell``),
  and numeric ranges on any
  summary measure: ``m.<name>__gte=``, ``__gt``, ``__lte``, ``__lt``, ``__exact``
  (e.g. ``m.dmv_count__gte=10``).
- Objects: run, sample, project, class name, and ranges on every numeric column
  (``volume_um3__gte=0.01``, ``distance_to_nucleus_nm__lt=2000``).

:class:`PreparedFilterBackend` applies a FilterSet's filters without building
the FilterSet for each request (the objects' list: 127 filters).
"""

from __future__ import annotations

import functools

import django_filters
from django import forms
from django.db import connection
from django.db.models import Exists, OuterRef
from django.forms.utils import ErrorDict, ErrorList
from django.utils.datastructures import MultiValueDict
from django_filters.constants import EMPTY_VALUES
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
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


def runs_with_flag(runs, flag: str):
    """Runs whose summary carried the quality flag ``flag`` (``thin_cell``, ``coarse_voxels``...)."""
    if connection.vendor == "postgresql":
        return runs.filter(quality__contains=[{"flag": flag}])
    table = Run._meta.db_table
    return runs.extra(where=[f"EXISTS (SELECT 1 FROM json_each({table}.quality) AS q "
                             "WHERE json_extract(q.value, '$.flag') = %s)"], params=[flag])


def samples_with_flag(samples, flag: str):
    """Samples with a run whose summary carried the quality flag ``flag``."""
    if connection.vendor == "postgresql":
        return samples.filter(Exists(Run.objects.filter(sample=OuterRef("pk"), quality__contains=[{"flag": flag}])))
    sample, run = Sample._meta.db_table, Run._meta.db_table
    return samples.extra(where=[f"EXISTS (SELECT 1 FROM {run} AS r, json_each(r.quality) AS q WHERE "
                                f"r.sample_id = {sample}.id AND json_extract(q.value, '$.flag') = %s)"],
                         params=[flag])


class SampleFilter(django_filters.FilterSet):
    project = django_filters.CharFilter(field_name="project__name")
    tag = django_filters.CharFilter(method="filter_tag")
    flag = django_filters.CharFilter(method="filter_flag", help_text="a quality flag of one of its runs, e.g. thin_cell")
    field = django_filters.CharFilter(method="filter_field", help_text="key:value of a free field")
    hours_post_infection__gte = django_filters.NumberFilter(field_name="hours_post_infection", lookup_expr="gte")
    hours_post_infection__lte = django_filters.NumberFilter(field_name="hours_post_infection", lookup_expr="lte")

    class Meta:
        model = Sample
        fields = ["name", "modality", "cell_line", "infection", "hours_post_infection", "replicate", "curation",
                  "subject_id"]

    def filter_tag(self, queryset, name, value):
        return with_tag(queryset, value)

    def filter_flag(self, queryset, name, value):
        return samples_with_flag(queryset, value)

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
    flag = django_filters.CharFilter(method="filter_flag", help_text="a quality flag of the run, e.g. coarse_voxels")

    class Meta:
        model = Run
        fields = ["kind", "status", "model_name", "sxtseg_version"]

    def filter_flag(self, queryset, name, value):
        return runs_with_flag(queryset, value)


class SampleRunsFilter(django_filters.NumberFilter):
    """Objects of a sample, selected by the ids of its runs as values (``run_id IN (...)``), not through a join.

    With the ids, PostgreSQL plans by its own statistics of ``run_id`` and reads a run's rows
    in id order through the (run_id, id) index; with a join to the runs it could not tell how
    many rows the sample holds, and at 10^8 rows it walked the primary key instead (23 s for a
    sample three quarters into the table, against about 1 ms for its run's page).
    """

    def filter(self, qs, value):
        if value in EMPTY_VALUES:
            return qs
        return qs.filter(run_id__in=list(Run.objects.filter(sample_id=value).values_list("id", flat=True)))


class ObjectFilter(django_filters.FilterSet):
    run = django_filters.NumberFilter(field_name="run_id")
    sample = SampleRunsFilter(field_name="run__sample")
    project = django_filters.CharFilter(field_name="project__name")

    class Meta:
        model = CatalogObject
        fields = {"class_name": ["exact"], "class_id": ["exact"], "label": ["exact"],
                  "touches_border": ["exact"], **{c: list(_OPERATORS) for c in _NUMERIC}}


@functools.cache
def prepared_filters(filterset_class) -> dict[str, django_filters.Filter]:
    """The filters of ``filterset_class`` as an instance of it holds them (model set, form field made), made once.

    Parameters
    ----------
    filterset_class : type of django_filters.FilterSet
        Every filter must be a plain lookup: no ``method=``, not required, and
        a form field whose widget reads one query parameter of the filter's name.

    Returns
    -------
    dict of str to Filter
        In the FilterSet's order (the order its form cleans them and its ``qs`` applies them).
    """
    filterset = filterset_class(queryset=filterset_class._meta.model._default_manager.none())
    for name, filter_ in filterset.filters.items():
        field = filter_.field  # made here, once, as the FilterSet's form class would make it
        if filter_.method is not None or field.required or isinstance(field.widget, forms.MultiWidget):
            raise TypeError(f"{filterset_class.__name__}.{name}: PreparedFilterBackend takes plain lookups only")
    return filterset.filters


def clean_parameters(filters: dict, params) -> dict:
    """The cleaned values of the filter parameters present in ``params``, as the FilterSet's form cleans them.

    Parameters
    ----------
    filters : dict of str to Filter
        From :func:`prepared_filters`.
    params : QueryDict
        The request's query parameters (the last value of a repeated one counts, as in a form).

    Returns
    -------
    dict of str to value
        In the order of ``filters``; empty values ('' or None) included (their filters do nothing).

    Raises
    ------
    rest_framework.exceptions.ValidationError
        A 400 with the message of every bad parameter, in the order of ``filters``:
        the answer django-filter's backend gives.
    """
    values, errors = {}, ErrorDict()
    for name, filter_ in filters.items():
        if name not in params:  # an absent parameter cleans to an empty value: its filter does nothing
            continue
        field = filter_.field
        try:
            values[name] = field.clean(field.widget.value_from_datadict(params, MultiValueDict(), name))
        except forms.ValidationError as error:
            errors[name] = ErrorList(error.error_list)
    if errors:
        raise translate_validation(errors)
    return values


class PreparedFilterBackend(DjangoFilterBackend):
    """django-filter's backend, without a new FilterSet for each request.

    ``DjangoFilterBackend`` makes a FilterSet per request: it deep-copies every
    filter (127 for objects), builds a form class and form with a field for
    each, and cleans them all.  This backend prepares the filters once per
    FilterSet class (:func:`prepared_filters`); per request it cleans only the
    parameters given, with the same form fields (the same values, the same
    400 messages in the same order), then applies the same filters in the same
    order, so the query is the same.  The OpenAPI schema (drf-spectacular reads
    the view's ``filterset_class`` through this subclass) and the browsable
    API's filter form are django-filter's, unchanged.
    """

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return queryset
        filters = prepared_filters(filterset_class)
        queryset = queryset.all()
        for name, value in clean_parameters(filters, request.query_params).items():
            queryset = filters[name].filter(queryset, value)
        return queryset
