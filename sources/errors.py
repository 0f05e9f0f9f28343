"""Errors of the sources layer: playlists and track metadata, and audio fetching.

Reads and writes nothing. Two trees, one per concern; callers branch on ``retriable``::

    SourceError                  a playlist or track source failed (not retriable)
    ├── PlaylistNotFound         no such playlist (or local folder)
    ├── PlaylistRefused          a local folder outside the configured roots: never read
    ├── TrackNotFound            no such track at the source (e.g. no Deezer match for an ISRC)
    ├── CredentialsMissing       Spotify client id or secret not configured
    ├── CredentialsRejected      Spotify refused the configured client id and secret
    └── SourceUnavailable        network error, timeout, HTTP 5xx or 429, Deezer quota (retriable)

    AudioError                   a track's audio could not be had (not retriable)
    ├── AudioUnavailable         no locator worked; ``reasons`` holds one line per locator tried
    ├── AudioRefused             a host, scheme or path that is not allowed: never contacted
    └── AudioTooLarge            the audio is larger than the configured cap
"""

from __future__ import annotations


class SourceError(Exception):
    """A playlist or track source failed."""

    retriable = False


class PlaylistNotFound(SourceError):
    """The playlist (or local folder) does not exist, or the source will not show it."""


class PlaylistRefused(SourceError):
    """A ``local:`` folder outside every configured root; nothing in it was read."""


class TrackNotFound(SourceError):
    """The source has no such track."""


class CredentialsMissing(SourceError):
    """Spotify needs a client id and secret, and at least one is not configured."""

    def __init__(self) -> None:
        super().__init__(
            "Spotify client credentials are not configured: set SPOTREC_SPOTIFY_CLIENT_ID and "
            "SPOTREC_SPOTIFY_CLIENT_SECRET (from https://developer.spotify.com/dashboard)"
        )


class CredentialsRejected(SourceError):
    """Spotify's token endpoint refused the configured client id and secret."""


class SourceUnavailable(SourceError):
    """A transient failure: network, timeout, HTTP 5xx or 429, or Deezer's quota; try later."""

    retriable = True


class AudioError(Exception):
    """A track's audio could not be had."""

    retriable = False


class AudioUnavailable(AudioError):
    """No audio locator of a track worked.

    Attributes:
        track_id: The track whose audio was wanted.
        reasons: One human-readable line per locator tried, in the order tried.
        causes: The error behind each reason, in the same order.
    """

    def __init__(
        self,
        track_id: str,
        reasons: tuple[str, ...],
        causes: tuple[Exception, ...] = (),
    ) -> None:
        self.track_id = track_id
        self.reasons = reasons
        self.causes = causes
        detail = "; ".join(reasons) if reasons else "it has no audio locator"
        super().__init__(f"no audio for track {track_id}: {detail}")


class AudioRefused(AudioError):
    """A URL or path that is not allowed; it was never contacted or opened."""


class AudioTooLarge(AudioError):
    """The audio is larger than the configured cap (``SPOTREC_AUDIO_MAX_BYTES``)."""
