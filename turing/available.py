"""How many images a new study could draw now, in words for the study form's choices:
approved synthetic images per generator and per case, and real images per pool and
modality. A study is refused when a side has fewer than it asks for; the educator sees
these counts before asking."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count

from cases.models import Instance, ReferenceImage, SyntheticPatient


def _approved_images():
    return Instance.objects.filter(
        series__study__patient__status=SyntheticPatient.Status.APPROVED,
        series__study__patient__twin_of__isnull=True,
    ).exclude(series__modality="SEG")


def _words(n: int, modality: str) -> str:
    return f"{n} approved {modality} image{'s' * (n != 1)}"


def synthetic_by_generator() -> dict[int, str]:
    rows = (
        _approved_images()
        .values(
            "series__study__patient__template_version__generator",
            "series__modality",
        )
        .annotate(n=Count("pk"))
    )
    return {
        row["series__study__patient__template_version__generator"]: _words(
            row["n"], row["series__modality"]
        )
        for row in rows
    }


def synthetic_by_case() -> dict[int, str]:
    rows = (
        _approved_images()
        .values("series__study__patient", "series__modality")
        .annotate(n=Count("pk"))
    )
    return {
        row["series__study__patient"]: _words(row["n"], row["series__modality"]) for row in rows
    }


def real_by_pool() -> dict[int, str]:
    counts: dict[int, list[str]] = defaultdict(list)
    rows = ReferenceImage.objects.values("pool", "modality").annotate(n=Count("pk"))
    for row in rows.order_by("pool", "modality"):
        counts[row["pool"]].append(f"{row['n']} {row['modality']}")
    return {pool: " + ".join(parts) + " images" for pool, parts in counts.items()}
