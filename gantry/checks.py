"""System checks of Gantry's own settings (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def pseudonym_key_is_set(app_configs: Any, **_kwargs: Any) -> list[Error]:
    if settings.GANTRY_PSEUDONYM_KEY:
        return []
    return [
        Error(
            "GANTRY_PSEUDONYM_KEY is not set: real images cannot be imported into reference "
            "pools, since de-identification derives its pseudonyms from it.",
            hint="Set it to a long random secret, and keep it: a new key gives new pseudonyms.",
            id="gantry.E001",
        )
    ]
