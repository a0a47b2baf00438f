from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Cases and generation"

    def ready(self) -> None:
        import cases.permissions  # noqa: F401  (adds the app's object rules)
        import gantry.checks  # noqa: F401  (registers the deployment checks)
        from gantry.permissions import sync_role_groups

        post_migrate.connect(sync_role_groups, dispatch_uid="gantry-sync-role-groups")
