from django.apps import AppConfig


class TuringConfig(AppConfig):
    name = "turing"
    verbose_name = "Visual Turing tests"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import turing.permissions  # noqa: F401  (adds the app's object rules)
        from cases.dicomweb.access import register_hidden_filter
        from turing.access import hidden_from_raters

        register_hidden_filter(hidden_from_raters)
