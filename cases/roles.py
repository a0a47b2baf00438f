"""Roles: Django groups with the permissions each role needs, and the checks views use.

The groups are kept in step with ``ROLE_PERMISSIONS`` after every ``migrate``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.http import HttpRequest

TRAINEE, EDUCATOR, EXPERT = "trainee", "educator", "expert"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    TRAINEE: [],
    EXPERT: [
        "cases.view_syntheticpatient",
        "cases.view_generatormodel",
        "cases.view_casetemplate",
        "cases.view_referencepool",
    ],
    EDUCATOR: [
        "cases.view_generatormodel",
        "cases.view_casetemplate",
        "cases.add_casetemplate",
        "cases.change_casetemplate",
        "cases.view_generationjob",
        "cases.add_generationjob",
        "cases.view_syntheticpatient",
        "cases.change_syntheticpatient",
        "cases.view_referencepool",
        "cases.add_referencepool",
        "cases.add_referenceimage",
    ],
}

User = AbstractBaseUser | AnonymousUser


def sync_role_groups(**_kwargs: Any) -> None:
    """Create the role groups and set exactly the permissions ``ROLE_PERMISSIONS`` names."""
    for role, perm_names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = []
        for name in perm_names:
            app_label, codename = name.split(".")
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:  # absent while the app's own migrations have not run yet
                perms.append(perm)
        group.permissions.set(perms)


def roles_of(user: User) -> set[str]:
    if not user.is_authenticated:
        return set()
    return set(user.groups.values_list("name", flat=True))  # type: ignore[union-attr]


def can_author(user: User) -> bool:
    """Educators write templates and launch generation."""
    return user.has_perm("cases.add_generationjob")


def can_see_all_cases(user: User) -> bool:
    """Educators and experts see every case, drafts included; trainees only approved ones."""
    return user.has_perm("cases.view_syntheticpatient")


def can_see_reference(user: User) -> bool:
    """Educators and experts see the real images of reference pools; trainees never do."""
    return user.has_perm("cases.view_referencepool")


def can_import_reference(user: User) -> bool:
    """Educators (and admins) create pools and import real DICOM into them."""
    return user.has_perm("cases.add_referenceimage")


def role_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "user_roles": roles_of(user),
        "user_can_author": can_author(user),
        "user_sees_all_cases": can_see_all_cases(user),
    }
