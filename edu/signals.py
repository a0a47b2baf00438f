"""Signals edu sends, for feature apps that act on quiz results without edu importing them
(LTI sends a launched attempt's score back to the learning platform)."""

from django.dispatch import Signal

# Sent with ``attempt=`` when an attempt's score is final or changed: the attempt was
# finished, or one of its answers was graded by hand after it was finished.
attempt_scored = Signal()
