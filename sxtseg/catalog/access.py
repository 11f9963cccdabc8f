"""Who may see and change what: every query is filtered here, in the queryset, never in a template.

- Reading a project's samples, runs, measures and objects needs a role on
  it (owner, member or collaborator), directly or through a group; with
  ``SXTSEG_CATALOG_ANONYMOUS_READ=1`` anyone may read.  Superusers see all.
- Writing (ingest, curation) needs an authenticated user with the owner or
  member role on the project.
- Another project's data is not found (404), not forbidden: its existence is not revealed.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet
from rest_framework import permissions

from .models import WRITE_ROLES, Project

__all__ = ["visible_projects", "visible_project_ids", "writable_projects", "role_of", "can_write",
           "ReadMembersWriteAuthenticated"]


def _role_filter(user, roles=None) -> Q:
    member = Q(memberships__user=user)
    shared = Q(group_shares__group__in=user.groups.all())
    if roles is not None:
        member &= Q(memberships__role__in=roles)
        shared &= Q(group_shares__role__in=roles)
    return member | shared


def _reads_everything(user) -> bool:
    """Superusers, and everyone when anonymous read is on."""
    return getattr(settings, "ANONYMOUS_READ", False) or (user.is_authenticated and user.is_superuser)


def visible_projects(user) -> QuerySet:
    """Projects ``user`` may read."""
    if _reads_everything(user):
        return Project.objects.all()
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(_role_filter(user)).distinct()


def visible_project_ids(user) -> list[int] | None:
    """Ids of the projects ``user`` may read, or None for all of them (superusers, anonymous read).

    For the object rows: a literal list of ids lets the database weigh each project by its own
    statistics of the rows' ``project_id`` (a subquery hides how many rows it lets through).
    """
    if _reads_everything(user):
        return None
    return sorted(visible_projects(user).values_list("id", flat=True))


def writable_projects(user) -> QuerySet:
    """Projects ``user`` may write to (owner or member)."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(_role_filter(user, WRITE_ROLES)).distinct()


def role_of(user, project: Project) -> str | None:
    """The strongest role of ``user`` on ``project`` (``"owner"``, ``"member"``, ``"collaborator"``), or None."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return "owner"
    roles = set(project.memberships.filter(user=user).values_list("role", flat=True))
    roles |= set(project.group_shares.filter(group__in=user.groups.all()).values_list("role", flat=True))
    for role in ("owner", "member", "collaborator"):
        if role in roles:
            return role
    return None


def can_write(user, project: Project) -> bool:
    return role_of(user, project) in WRITE_ROLES


class ReadMembersWriteAuthenticated(permissions.BasePermission):
    """Reads: authenticated users (their querysets hold only what they may see), or anyone with anonymous read.

    Writes: authenticated users; the view checks their role on the project concerned.
    """

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return bool(request.user and request.user.is_authenticated) or getattr(settings, "ANONYMOUS_READ", False)
        return bool(request.user and request.user.is_authenticated)
