"""A summary measure grouped by condition fields: what ``/api/aggregate/`` and the compare page share."""

from __future__ import annotations

from django.db.models import Q

from .access import visible_projects
from .models import Measure

__all__ = ["GROUP_FIELDS", "grouped_values"]

#: Condition fields a measure can be grouped by (``study_month`` is the study date's year and month).
GROUP_FIELDS = ("modality", "cell_line", "infection", "hours_post_infection", "replicate", "curation", "project",
                "study_month", "subject_id")
_PATHS = {"project": "run__sample__project__name", "study_month": "run__sample__study_date"}


def _order(keys: tuple) -> list:
    """Numbers in numeric order, then text, missing values last."""
    return [(k is None, (0, k, "") if isinstance(k, (int, float)) else (1, 0, str(k))) for k in keys]


def grouped_values(user, measure: str, by: list[str], filters: Q | None = None) -> dict[tuple, list[float]]:
    """Values of ``measure`` in the runs ``user`` may see, grouped by the ``by`` fields (ordered groups)."""
    where = Q(run__sample__project__in=visible_projects(user), name=measure, value__isnull=False)
    if filters is not None:
        where &= filters
    paths = [_PATHS.get(b, f"run__sample__{b}") for b in by]
    groups: dict[tuple, list[float]] = {}
    for value, *keys in Measure.objects.filter(where).values_list("value", *paths).iterator(chunk_size=10_000):
        keys = [k.strftime("%Y-%m") if (b == "study_month" and k is not None) else k for b, k in zip(by, keys)]
        groups.setdefault(tuple(keys), []).append(value)
    return dict(sorted(groups.items(), key=lambda kv: _order(kv[0])))
