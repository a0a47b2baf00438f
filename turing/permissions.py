"""Object rules of the turing app (see :mod:`gantry.permissions`)."""

from __future__ import annotations

from typing import Any

import rules

from gantry.permissions import holds


@rules.predicate
def is_study_rater(user: Any, study: Any) -> bool:
    return study is not None and study.rater_set.filter(user_id=user.pk).exists()


@rules.predicate
def is_closed(user: Any, study: Any) -> bool:
    return study is not None and study.is_closed


# Read a study's blinded images: its raters, and whoever runs studies.
rules.add_perm("turing.rate_study", is_study_rater | holds("turing.run_study"))
# Its results, once it is closed: the same people.
rules.add_perm("turing.view_results", (is_study_rater | holds("turing.run_study")) & is_closed)
