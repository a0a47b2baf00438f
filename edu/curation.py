"""The curation rule: from a case's expert reviews to its status. Pure; no database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DRAFT, IN_REVIEW, APPROVED, REJECTED = "draft", "in_review", "approved", "rejected"


@dataclass(frozen=True)
class Rule:
    min_reviews: int
    min_mean_realism: float
    finding_confirmed_by_all: bool


@dataclass(frozen=True)
class Vote:
    realism: int
    shows_finding: str  # "yes", "no" or "unsure"


def decide(rule: Rule, votes: Sequence[Vote]) -> str:
    """The status the rule gives a case with these reviews.

    Fewer reviews than the rule asks for: draft (none yet) or in review. Enough reviews:
    approved when the mean realism reaches the threshold and, if the rule asks, every
    reviewer answered "yes" to "shows the labelled finding"; rejected otherwise. Reviews
    can be edited, so a decided case is decided again on every change.
    """
    if not votes:
        return DRAFT
    if len(votes) < rule.min_reviews:
        return IN_REVIEW
    mean_realism = sum(v.realism for v in votes) / len(votes)
    confirmed = all(v.shows_finding == "yes" for v in votes)
    if mean_realism >= rule.min_mean_realism and (confirmed or not rule.finding_confirmed_by_all):
        return APPROVED
    return REJECTED


def explain(rule: Rule, votes: Sequence[Vote]) -> str:
    """Why the rule gives a case with these reviews its status, in a sentence."""
    needed = f"{rule.min_reviews} review{'s' * (rule.min_reviews != 1)}"
    if not votes:
        return f"No expert has reviewed it yet; the rule needs {needed}."
    if len(votes) < rule.min_reviews:
        return f"{len(votes)} of the {needed} the rule needs."
    mean_realism = sum(v.realism for v in votes) / len(votes)
    problems = []
    if mean_realism < rule.min_mean_realism:
        problems.append(f"mean realism {mean_realism:.1f} is below {rule.min_mean_realism:g}")
    if rule.finding_confirmed_by_all and not all(v.shows_finding == "yes" for v in votes):
        problems.append("not every expert confirmed the labelled finding")
    if problems:
        return "Rejected: " + " and ".join(problems) + "."
    reviews = f"{len(votes)} review{'s' * (len(votes) != 1)}"
    return f"Approved: {reviews}, mean realism {mean_realism:.1f}."
