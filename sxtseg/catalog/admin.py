"""The Django admin of the catalog's tables."""

from django.contrib import admin

from .models import GroupShare, Membership, Project, Run, Sample


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


class GroupShareInline(admin.TabularInline):
    model = GroupShare
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    inlines = [MembershipInline, GroupShareInline]


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "modality", "cell_line", "infection", "hours_post_infection", "curation"]
    list_filter = ["modality", "curation", "infection", "project"]
    search_fields = ["name", "subject_id"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "sample", "kind", "model_name", "sxtseg_version", "created_at"]
    list_filter = ["kind"]
    readonly_fields = [f.name for f in Run._meta.fields]
