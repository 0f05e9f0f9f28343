"""Removes what must never be written down from text bound for logs, reasons and dead letters.

Reads text; returns it with the query string and fragment of every http(s) URL replaced by a
marker. Signed URLs (Deezer's previews, S3 presigned links) carry their credentials there, and a
reason ends up in Cassandra, the API's answers and the dead-letter topic.
"""

from __future__ import annotations

import re

#: An http(s) URL up to its query string or fragment; quotes and angle brackets end it too.
_URL = re.compile(r"(?i)\b(https?://[^\s?#'\"<>]*)([?#][^\s'\"<>]*)?")
REDACTED = "?(redacted)"


def scrub_urls(text: str) -> str:
    """``text`` with every URL's query string and fragment replaced by ``?(redacted)``."""
    return _URL.sub(lambda m: m.group(1) + (REDACTED if m.group(2) else ""), text)
