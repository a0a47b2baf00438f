"""The rating scales experts answer on, each point with its anchor, shared by case reviews
and Turing reading studies so that a "4" means the same on both pages."""

from __future__ import annotations

REALISM = [
    (1, "1 · clearly artificial"),
    (2, "2 · mostly artificial"),
    (3, "3 · plausible, with visible flaws"),
    (4, "4 · realistic, minor flaws"),
    (5, "5 · indistinguishable from a clinical image"),
]
TEACHING_VALUE = [
    (1, "1 · none"),
    (2, "2 · little"),
    (3, "3 · useful"),
    (4, "4 · good"),
    (5, "5 · excellent, worth a quiz"),
]
CONFIDENCE = [
    (1, "1 · guessing"),
    (2, "2 · unsure"),
    (3, "3 · fairly sure"),
    (4, "4 · sure"),
    (5, "5 · certain"),
]
QUALITY = [
    (1, "1 · non-diagnostic"),
    (2, "2 · poor"),
    (3, "3 · adequate"),
    (4, "4 · good"),
    (5, "5 · excellent"),
]
