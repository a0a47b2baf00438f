"""Who may do what, for pages and the API alike.

Two kinds of permission, both asked as ``user.has_perm(name)`` or ``user.has_perm(name, obj)``:

- **What a role may do at all**: Django permissions, each app naming its own
  (``cases.add_casetemplate``, ``edu.manage_quiz``, ``turing.run_study``, ...). A role is a
  Django group holding the permissions ``ROLE_PERMISSIONS`` lists, kept in step after every
  ``migrate``.
- **What a user may do with one object**: django-rules rules under names of their own
  (``cases.edit_template``, ``edu.edit_quiz``, ``edu.take_attempt``, ``turing.rate_study``),
  each app adding its rules in its ``permissions.py``. A rule is a predicate over the user and
  the object: the owner and co-authors of a template or quiz, the raters of a study, the
  trainee of an attempt; where it also needs a role, it asks for that role's permission.

Pages gate on the first with ``permission_required`` and fetch objects with
:func:`object_or_403`; API views use :class:`Perms` and :class:`ObjectRules` with the same
names. Superusers hold every permission and pass every rule.
"""

from __future__ import annotations

from typing import Any

import rules
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from rest_framework import permissions as drf

TRAINEE, EDUCATOR, EXPERT = "trainee", "educator", "expert"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    TRAINEE: ["edu.practise"],
    EXPERT: [
        "cases.view_syntheticpatient",
        "cases.view_generatormodel",
        "cases.view_casetemplate",
        "cases.view_referencepool",
        "edu.review_case",
        "edu.read_reference",
        "turing.join_studies",
    ],
    EDUCATOR: [
        "cases.view_generatormodel",
        "cases.teach_direction",
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
        "edu.manage_quiz",
        "edu.curate_cases",
        "turing.run_study",
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


def holds(perm: str) -> rules.Predicate:
    """A predicate: the user holds the (role) permission ``perm``, whatever the object."""
    return rules.Predicate(lambda user: user.has_perm(perm), name=f"holds {perm}")


def object_or_403(request: HttpRequest, queryset: QuerySet | type[Model], perm: str, **lookup: Any):
    """The object ``lookup`` finds (404 if none), if the user may ``perm`` it (else 403)."""
    obj = get_object_or_404(queryset, **lookup)
    if not request.user.has_perm(perm, obj):
        raise PermissionDenied(f"you may not {perm.split('.', 1)[1].replace('_', ' ')} this")
    return obj


class Perms(drf.BasePermission):
    """DRF: the view's ``required_perms`` (action -> permission names; ``"*"`` for any action
    not listed) are all held. An action with no entry and no ``"*"`` needs only a login."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if not request.user.is_authenticated:
            return False
        required = getattr(view, "required_perms", {})
        names = required.get(getattr(view, "action", None), required.get("*", ()))
        return request.user.has_perms(names)


class ObjectRules(drf.BasePermission):
    """DRF: the view's ``object_rules`` (action -> rule name) hold for the object acted on."""

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        rule = getattr(view, "object_rules", {}).get(getattr(view, "action", None))
        return rule is None or request.user.has_perm(rule, obj)


def role_context(request: HttpRequest) -> dict[str, Any]:
    """Templates: the user's role names (what the page header shows); use ``perms`` to
    decide what a page offers."""
    return {"user_roles": roles_of(request.user)}


def users_with(perm: str) -> QuerySet:
    """Active users who hold ``perm`` through a group, directly, or as superusers: those who
    may be made co-authors of an object that needs it."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    app_label, codename = perm.split(".")
    holding = Q(content_type__app_label=app_label, codename=codename)
    permission = Permission.objects.filter(holding)
    return (
        get_user_model()
        .objects.filter(
            Q(groups__permissions__in=permission)
            | Q(user_permissions__in=permission)
            | Q(is_superuser=True),
            is_active=True,
        )
        .distinct()
        .order_by("username")
    )
