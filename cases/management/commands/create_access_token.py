"""Make a user's DICOMweb token (revoking their old one) and print it: the only time it is seen."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cases.models import AccessToken


class Command(BaseCommand):
    help = "Make a new DICOMweb token for USERNAME (the old one stops working) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        self.stdout.write(AccessToken.issue(user))
