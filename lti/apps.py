from django.apps import AppConfig


class LtiConfig(AppConfig):
    name = "lti"
    verbose_name = "LTI 1.3 (learning platforms)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from edu.signals import attempt_scored
        from lti.grades import queue_score

        attempt_scored.connect(queue_score, dispatch_uid="lti-send-score")
