from django.apps import AppConfig


class EduConfig(AppConfig):
    name = "edu"
    verbose_name = "Education"

    def ready(self) -> None:
        import edu.permissions  # noqa: F401  (adds the app's object rules)
        from cases.models import register_case_access
        from edu.models import practised_case_ids, revealed_case_ids

        # Trainees meet a case only through a published quiz of their cohort, and see it in
        # full (case page, images, API) once its answer was revealed to them: otherwise the
        # case page would give away a quiz's diagnosis.
        register_case_access(revealed_case_ids)
        # A case answered in spaced practice is theirs to see in full as well.
        register_case_access(practised_case_ids)
