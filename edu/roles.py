"""Who may do what in edu: by role group (see cases.roles), superusers count as educators."""

from __future__ import annotations

from typing import Any

from cases.roles import EDUCATOR, EXPERT, TRAINEE, roles_of


def is_educator(user: Any) -> bool:
    return user.is_authenticated and (user.is_superuser or EDUCATOR in roles_of(user))


def is_expert(user: Any) -> bool:
    return EXPERT in roles_of(user)


def is_trainee(user: Any) -> bool:
    return TRAINEE in roles_of(user)
