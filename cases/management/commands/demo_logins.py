"""Print the demo's logins (``bin/run-demo`` prints them last, once the site answers)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from cases.management.commands.load_demo import ADMIN_LOGIN, DEMO_USERS

WHAT_TO_TRY = {
    "educator": "Templates, Quizzes, Curation, Turing tests",
    "expert": "Review, Quizzes (read as reference), Turing tests",
    "trainee": "Quizzes, Progress",
    "admin": "/admin/",
}


class Command(BaseCommand):
    help = "Print the demo users' logins and where to start."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the site's address")

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        logins = [(role, user, password) for user, (role, password) in DEMO_USERS.items()]
        logins.append(("admin", *ADMIN_LOGIN))
        self.stdout.write("")
        self.stdout.write(f"Gantry is at {url} (Ctrl-C stops the site and the worker). Logins:")
        for role, user, password in logins:
            self.stdout.write(f"  {role:9s} {user:9s} password {password:16s} {WHAT_TO_TRY[role]}")
        self.stdout.write("")
