"""The host allow-list: decides, before any connection, whether a URL may be fetched.

Reads a URL and the configured entries (``SPOTREC_AUDIO_ALLOWED_HOSTS``); writes nothing. An
entry is an exact host (``127.0.0.1``, ``cdn.example.org``), optionally with a port
(``cdn.example.org:8443``), or ``.suffix`` for a domain and all its sub-domains
(``.dzcdn.net``). The URL is parsed once, with the same parser aiohttp connects with, and that
parsed URL is what gets requested, so the check and the connection cannot disagree.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from yarl import URL

from sources.errors import AudioRefused

SCHEMES = ("http", "https")
#: A DNS name in its ASCII form (IDNs arrive punycoded from yarl): letters, digits, '-', '.'.
_HOSTNAME = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*$")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``(host, port or None)``; a malformed entry gives an empty host, which matches nothing."""
    entry = entry.strip().lower()
    host, port = entry, ""
    if entry.startswith("["):  # [IPv6] or [IPv6]:port
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":") if rest else ""
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    if not port:
        return host.removesuffix("."), None
    return (host.removesuffix("."), int(port)) if port.isdigit() else ("", None)


def host_allowed(host: str, port: int | None, entries: Iterable[str]) -> bool:
    """Whether ``host`` (ASCII, lower-case) on ``port`` matches one of the allow-list entries.

    Args:
        host: The host name or IP address as it will be connected to.
        port: The port that will be connected to.
        entries: Allow-list entries: exact hosts, ``host:port``, or ``.suffix``.

    Returns:
        True when an entry matches; suffix entries never match IP addresses.
    """
    host = host.lower().removesuffix(".")
    for entry in entries:
        name, entry_port = _split_entry(entry)
        if entry_port is not None and entry_port != port:
            continue
        if name.startswith("."):
            domain = name[1:]
            if domain and not _is_ip(host) and (host == domain or host.endswith(name)):
                return True
        elif name and host == name:
            return True
    return False


def check_url(url: str | URL, entries: Iterable[str]) -> URL:
    """Parse ``url`` and refuse it unless its scheme and host are allowed.

    Args:
        url: An absolute URL from an event, an API response or a redirect.
        entries: The allow-list (``settings.audio.allowed_hosts``).

    Returns:
        The parsed URL, which is what the caller must request.

    Raises:
        AudioRefused: The URL is malformed, not http(s), carries user info, or its host is not
            on the allow-list. Nothing was contacted.
    """
    text = str(url)
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        port = parsed.port
    except (ValueError, TypeError) as exc:
        msg = f"refused {text!r}: not a valid URL ({exc})"
        raise AudioRefused(msg) from exc
    if parsed.scheme not in SCHEMES:
        msg = f"refused {text!r}: scheme {parsed.scheme!r} is not one of {SCHEMES}"
        raise AudioRefused(msg)
    # Any user info ('user@', ':@') is refused: it is how 'http://good.host@evil.host/' fools
    # readers, and audio CDNs never need it.
    if "@" in (parsed.raw_authority or ""):
        msg = f"refused a URL with user info in its authority (host {parsed.raw_host!r})"
        raise AudioRefused(msg)
    host = (parsed.raw_host or "").lower()
    if not host:
        msg = f"refused {text!r}: no host"
        raise AudioRefused(msg)
    if not (_is_ip(host) or _HOSTNAME.match(host.removesuffix("."))):
        msg = f"refused {text!r}: {host!r} is not a plain host name or IP address"
        raise AudioRefused(msg)
    if not host_allowed(host, port, entries):
        msg = f"refused host {host!r}: not in SPOTREC_AUDIO_ALLOWED_HOSTS"
        raise AudioRefused(msg)
    return parsed
