"""Access tokens for DICOMweb clients."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import models, transaction


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class AccessToken(models.Model):
    """A user's token for DICOMweb clients, kept as its SHA-256 only.

    The key is shown once, when it is made: a copy of the database holds no key that works.
    A key has 160 random bits, so an unsalted, fast hash is enough (nothing to guess)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_token"
    )
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)  # the key's first characters, to tell keys apart
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, user: Any) -> str:
        """A new key for ``user``, which revokes the old one; returned, not stored."""
        key = secrets.token_hex(20)
        with transaction.atomic():
            cls.objects.filter(user=user).delete()
            cls.objects.create(user=user, digest=token_digest(key), prefix=key[:6])
        return key

    @classmethod
    def user_for(cls, key: str) -> Any | None:
        """The user a key belongs to; None for an unknown key."""
        found = cls.objects.select_related("user").filter(digest=token_digest(key)).first()
        return found.user if found else None
