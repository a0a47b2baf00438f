"""Object rules of the cases app (see :mod:`gantry.permissions`)."""

from __future__ import annotations

from typing import Any

import rules

from gantry.permissions import holds


@rules.predicate
def is_template_author(user: Any, template: Any) -> bool:
    return template is not None and template.is_author(user)


# Edit a template (save a new version, change its co-authors): its owner and co-authors.
# Every educator reads every template and may generate cases from it.
rules.add_perm("cases.edit_template", holds("cases.change_casetemplate") & is_template_author)
