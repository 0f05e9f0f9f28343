# The corpus is a table, one kind per line: long lines read better than wrapped ones.
# ruff: noqa: E501
"""Bad input, catalogued: every kind sent between good records through one real worker.

One ``spotrec worker`` on a deployment of the test's own, with the fake Spotify, Deezer and CDN
servers. Every kind of bad input in :data:`CORPUS` goes to the topic it would arrive on,
interleaved with good tracks; each must end as a dead letter or a track recorded ``unavailable``
(faults that may pass, after a short retry schedule) with a precise reason, the good tracks
around them must be embedded, and the worker must stay up with no agent crashed. The README lists the kinds.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from aiokafka import AIOKafkaProducer

from config.settings import Settings
from features.versions import model_version_of
from schemas.audio import AudioStoredV1
from schemas.dead_letters import read_dead_letter
from schemas.tracks import TrackDiscoveredV1
from stores.cassandra import CassandraSession
from stores.tracks import AudioStatus, TrackStore
from streams.names import AUDIO_STORED, DEAD_LETTERS, PLAYLISTS, TRACK_DISCOVERED
from streams.redrive import read_committed
from tests.fakes.catalogue import Catalogue, Clip, build_catalogue
from tests.fakes.cdn import FakeCdn
from tests.fakes.deezer_api import FakeDeezer
from tests.fakes.spotify_api import FakeSpotify
from tests.pipelines import (
    isolated_deployment,
    new_run_id,
    remove_deployment,
    start_worker,
    until,
)
from tests.processes import terminate

#: The worker's download cap in this run: bigger than every real clip, smaller than the
#: oversized ones.
CAP = 1024 * 1024
DEADLINE_S = 300.0


@dataclass(frozen=True)
class Bad:
    """One kind of bad input: where it goes, what it is, and the reason it must end with.

    Attributes:
        kind: Its name (unique; the message key or track id is derived from it).
        topic: The topic it is sent to (without the deployment's prefix).
        value: The message's bytes.
        outcome: ``dead-letter``, ``unavailable`` or ``failed``.
        reason: Text the reason must contain (case-insensitive).
    """

    kind: str
    topic: str
    value: bytes
    outcome: str
    reason: str


def _track(kind: str, *refs: str, **fields: Any) -> bytes:
    record = TrackDiscoveredV1(
        track_id=f"test:{kind}",
        name=kind,
        artists=["Nobody"],
        source="test",
        source_ref=kind,
        audio_refs=list(refs),
        **fields,
    )
    return record.dumps()


def _files(root: Path, outside: Path, catalogue: Catalogue) -> dict[str, Path]:
    """Local audio files that are wrong in every way, and links and paths leading outside."""
    clip = catalogue.clips[0].data
    made = {
        "truncated": (root / "truncated.mp3", clip[: len(clip) // 3]),
        "html": (root / "page.mp3", b"<!doctype html><html><body>Sign in</body></html>"),
        "garbage": (root / "noise.mp3", os.urandom(4096)),
        "empty": (root / "empty.mp3", b""),
        "oversized": (root / "huge.mp3", b"\xff\xfb" + os.urandom(CAP + 1024)),
        "wrong_type": (root / "notes.txt", b"not audio"),
        "secret": (outside / "secret.mp3", clip),
    }
    for path, data in made.values():
        path.write_bytes(data)
    soundfile.write(root / "silent.wav", np.zeros(22050 * 3, dtype=np.float32), 22050)
    (root / "link.mp3").symlink_to(outside / "secret.mp3")
    (root / "linked-folder").symlink_to(outside, target_is_directory=True)
    paths = {kind: path for kind, (path, _) in made.items()}
    paths["silent"] = root / "silent.wav"
    return paths


def corpus(root: Path, outside: Path, cdn: FakeCdn, catalogue: Catalogue) -> list[Bad]:
    """Every kind of bad input, with the outcome and reason it must end with."""
    f = _files(root, outside, catalogue)
    cdn_port = cdn.base_url.rsplit(":", 1)[1]
    evil = "http://evil.example/a.mp3"
    unknown_version = json.loads(_track("v9", "url:http://x"))
    unknown_version["__faust"] = {"ns": "spotrec.track_discovered.v9"}
    tracks = TRACK_DISCOVERED
    dead, gone = "dead-letter", "unavailable"
    return [
        # --- records that cannot be read: dead letters
        Bad("pl_not_utf8", PLAYLISTS, b"\xff\xfe\x00 playlist", dead, "not UTF-8"),
        Bad("pl_empty", PLAYLISTS, b"", dead, "empty playlist reference"),
        Bad("pl_oversized", PLAYLISTS, b"3" * 5000, dead, "expected at most 4096"),
        Bad("pl_html", PLAYLISTS, b"<html><body>oops</body></html>", dead, "spotify"),
        Bad("pl_wrong_uri", PLAYLISTS, b"spotify:track:6rqhFgbbKwnb9MLmUQDhG6", dead, "spotify:playlist:"),
        Bad("pl_outside_roots", PLAYLISTS, f"local:{outside}".encode(), dead, "outside the allowed roots"),
        Bad("pl_dotdot", PLAYLISTS, f"local:{root}/../outside".encode(), dead, "outside the allowed roots"),
        Bad("pl_symlink", PLAYLISTS, f"local:{root}/linked-folder".encode(), dead, "outside the allowed roots"),
        Bad("pl_missing_folder", PLAYLISTS, f"local:{root}/nope".encode(), dead, "does not exist"),
        Bad("tr_malformed_json", tracks, b'{"track_id": "test:x", "name": ', dead, "not JSON"),
        Bad("tr_not_utf8", tracks, b"\xc3\x28\xff", dead, "not JSON"),
        Bad("tr_empty", tracks, b"", dead, "not JSON"),
        Bad("tr_json_list", tracks, b"[1, 2, 3]", dead, "a JSON list"),
        Bad("tr_wrong_type", tracks, b'{"track_id": 42}', dead, "field 'track_id' holds 42"),
        Bad("tr_wrong_list", tracks, _track("x", "url:x").replace(b'["Nobody"]', b'"Nobody"'), dead, "field 'artists'"),
        Bad("tr_missing_fields", tracks, b'{"track_id": "test:y"}', dead, "spotrec.track_discovered.v1"),
        Bad("tr_unknown_version", tracks, json.dumps(unknown_version).encode(), dead, "track_discovered.v9 record"),
        Bad("tr_nan_duration", tracks, _track("nan", "url:x").replace(b'"duration_ms":null', b'"duration_ms":NaN'), dead, "duration_ms"),
        Bad("tr_oversized", tracks, _track("big", "url:x", album="a" * 300_000), dead, "at most 262144"),
        Bad("tr_bad_id", tracks, _track("x", "url:x").replace(b'"test:x"', b'"no-scheme"'), dead, "expected <scheme>:<id>"),
        Bad("tr_bad_locator", tracks, _track("ftp", "ftp://host/a.mp3"), dead, "is not one of"),
        Bad("as_wrong_type", AUDIO_STORED, b'{"track_id": "test:z", "object_key": 7}', dead, "object_key"),
        # --- records that can be read, whose audio cannot be had: unavailable with the reason
        Bad("disallowed_host", tracks, _track("disallowed_host", f"url:{evil}?sig=SECRET"), gone, "not in SPOTREC_AUDIO_ALLOWED_HOSTS"),
        Bad("redirect_disallowed", tracks, _track("redirect_disallowed", f"url:{cdn.url('/redirect')}?to={evil}"), gone, "refused host 'evil.example'"),
        Bad("ip_literal_link_local", tracks, _track("ip_literal_link_local", "url:http://169.254.169.254/latest/meta-data"), gone, "a link-local address"),
        Bad("redirect_to_ip_literal", tracks, _track("redirect_to_ip_literal", f"url:{cdn.url('/redirect')}?to=http://169.254.169.254/x"), gone, "a link-local address"),
        Bad("ip_literal_not_listed", tracks, _track("ip_literal_not_listed", "url:http://10.0.0.1/a.mp3"), gone, "not in SPOTREC_AUDIO_ALLOWED_HOSTS"),
        Bad("name_to_private", tracks, _track("name_to_private", f"url:http://localhost:{cdn_port}/clips/trumpet"), gone, "resolves to 127.0.0.1, a loopback address"),
        Bad("non_standard_port", tracks, _track("non_standard_port", "url:http://169.254.169.254:8080/x"), gone, "not in SPOTREC_AUDIO_ALLOWED_HOSTS"),
        Bad("cdn_404", tracks, _track("cdn_404", f"url:{cdn.url('/status/404')}"), gone, "HTTP 404"),
        Bad("cdn_redirect_loop", tracks, _track("cdn_redirect_loop", f"url:{cdn.url('/loop/0')}"), gone, "more than 5 redirects"),
        Bad("cdn_empty", tracks, _track("cdn_empty", f"url:{cdn.url('/empty')}"), gone, "empty body"),
        Bad("cdn_html", tracks, _track("cdn_html", f"url:{cdn.url('/html')}"), gone, "text/html, not audio"),
        Bad("cdn_over_cap", tracks, _track("cdn_over_cap", f"url:{cdn.url('/big')}?size={CAP * 2}"), gone, "more than the cap"),
        Bad("cdn_declares_over_cap", tracks, _track("cdn_declares_over_cap", f"url:{cdn.url('/big')}?size={CAP * 2}&declare=1"), gone, "declares"),
        Bad("file_outside_roots", tracks, _track("file_outside_roots", f"file:{f['secret']}"), gone, "outside SPOTREC_AUDIO_LOCAL_ROOTS"),
        Bad("file_dotdot", tracks, _track("file_dotdot", f"file:{root}/../outside/secret.mp3"), gone, "outside SPOTREC_AUDIO_LOCAL_ROOTS"),
        Bad("file_symlink", tracks, _track("file_symlink", f"file:{root}/link.mp3"), gone, "outside SPOTREC_AUDIO_LOCAL_ROOTS"),
        Bad("file_wrong_type", tracks, _track("file_wrong_type", f"file:{f['wrong_type']}"), gone, "not one of"),
        Bad("file_empty", tracks, _track("file_empty", f"file:{f['empty']}"), gone, "is empty"),
        Bad("file_oversized", tracks, _track("file_oversized", f"file:{f['oversized']}"), gone, f"the cap is {CAP}"),
        Bad("audio_truncated", tracks, _track("audio_truncated", f"file:{f['truncated']}"), gone, "the stream ends after"),
        Bad("audio_silent", tracks, _track("audio_silent", f"file:{f['silent']}"), gone, "silent"),
        Bad("audio_html", tracks, _track("audio_html", f"file:{f['html']}"), gone, "not a readable"),
        Bad("audio_garbage", tracks, _track("audio_garbage", f"file:{f['garbage']}"), gone, "not a readable"),
        Bad("as_missing_object", AUDIO_STORED, AudioStoredV1(track_id="test:as_missing_object", object_key="audio/none", sha256="0" * 64, size=1, audio_source="file:x").dumps(), gone, "audio object audio/none is missing"),
        # --- faults that may pass: retried on a schedule, then unavailable with the last reason
        Bad("cdn_500", tracks, _track("cdn_500", f"url:{cdn.url('/status/500')}"), gone, "HTTP 500"),
        Bad("cdn_slow", tracks, _track("cdn_slow", f"url:{cdn.url('/stall')}"), gone, "timed out"),
    ]  # fmt: skip


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[Catalogue, FakeSpotify, FakeDeezer, FakeCdn]]:
    catalogue = build_catalogue()
    async with (
        FakeSpotify(catalogue) as spotify,
        FakeDeezer(catalogue) as deezer,
        FakeCdn(catalogue) as cdn,
    ):
        yield catalogue, spotify, deezer, cdn


async def test_every_kind_of_bad_input_is_refused_precisely_and_the_good_gets_through(
    servers: Settings,
    tmp_path: Path,
    fakes: tuple[Catalogue, FakeSpotify, FakeDeezer, FakeCdn],
) -> None:
    catalogue, spotify, deezer, cdn = fakes
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    bad = corpus(root, outside, cdn, catalogue)
    assert len({b.kind for b in bad}) == len(bad) >= 30
    good = catalogue.clips[:4]
    for clip in good:
        (root / f"{clip.name}{clip.path.suffix}").write_bytes(clip.data)

    run = new_run_id("bad")
    settings, env = await isolated_deployment(
        servers,
        run=run,
        tmp=tmp_path / "run",
        spotify=spotify,
        deezer=deezer,
        worker_env={
            "SPOTREC_AUDIO_MAX_BYTES": str(CAP),
            "SPOTREC_AUDIO_TIMEOUT_S": "2",
            "SPOTREC_AUDIO_RETRIES": "0",
            "SPOTREC_AUDIO_LOCAL_ROOTS": json.dumps([str(root), str(catalogue.audio_dir)]),
            "SPOTREC_AUDIO_ALLOWED_HOSTS": json.dumps(
                ["127.0.0.1:*", "localhost:*", "169.254.169.254"]
            ),
            "SPOTREC_AUDIO_ALLOWED_ADDRESSES": json.dumps(["127.0.0.1"]),
            # Faults that may pass are retried on a schedule: once, soon, then given up.
            "SPOTREC_RETRY_LIMIT": "1",
            "SPOTREC_RETRY_DELAY_S": "0.5",
            "SPOTREC_RETRY_MAX_DELAY_S": "1",
            "SPOTREC_RETRY_SWEEP_INTERVAL_S": "1",
        },
    )
    log = tmp_path / "worker.log"
    worker = await start_worker(env, tmp_path / "worker", log)
    try:
        await _send(settings, bad, good, root, catalogue.spotify_playlist_id)
        async with CassandraSession(settings.cassandra) as db:
            tracks = TrackStore(db, settings.cassandra.keyspace)
            version = model_version_of(settings.model)
            good_ids = [f"test:good-{clip.name}" for clip in good]

            last: dict[str, tuple[str, str]] = {}

            async def outcomes() -> dict[str, tuple[str, str]] | None:
                # A track may pass through a state (failed, then unavailable once its retries
                # are spent): wait until each kind is in the state it must end in.
                last.update(await _outcomes(settings, tracks))
                embedded = [await tracks.has_embedding(t, version) for t in good_ids]
                settled = all(last.get(b.kind, ("",))[0] == b.outcome for b in bad)
                return last if settled and all(embedded) else None

            try:
                found = await until(outcomes, DEADLINE_S, "every bad input settled", log, 2.0)
            except AssertionError as exc:
                missing = [b.kind for b in bad if last.get(b.kind, ("",))[0] != b.outcome]
                msg = f"not settled as expected: {[(k, last.get(k)) for k in missing]}\n{exc}"
                raise AssertionError(msg) from None
        wrong = {
            b.kind: found[b.kind] for b in bad if b.reason.lower() not in found[b.kind][1].lower()
        }
        assert not wrong, "\n".join(
            f"{kind}: got {got}, expected {next(b for b in bad if b.kind == kind)}"
            for kind, got in wrong.items()
        )
        assert "SECRET" not in found["disallowed_host"][1]  # signed query strings are scrubbed
        # Each dead letter holds the refused message's exact bytes, ready to be redriven.
        parked = await _parked_values(settings)
        for item in bad:
            if item.outcome == "dead-letter":
                assert parked[item.kind] == item.value, item.kind
        assert worker.returncode is None, "the worker exited"
        text = log.read_text(errors="replace")
        assert "crashed" not in text.lower() and "experienced a crash" not in text
        assert "SECRET" not in text  # nor are they logged
        # The Spotify playlist's null and local-file items were skipped and counted.
        assert "local_file 1" in text and "null_track 1" in text, text[-3000:]
    finally:
        await terminate(worker)
        await remove_deployment(settings, run)


async def _send(
    settings: Settings, bad: list[Bad], good: Sequence[Clip], root: Path, spotify_playlist: str
) -> None:
    """Each bad input between two good tracks, on its topic; then the Spotify playlist."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap, acks="all", max_request_size=2**20
    )
    await producer.start()
    try:
        for i, item in enumerate(bad):
            clip = good[i % len(good)]
            path = root / f"{clip.name}{clip.path.suffix}"
            good_track = TrackDiscoveredV1(
                track_id=f"test:good-{clip.name}",
                name=clip.name,
                artists=["Somebody"],
                source="test",
                source_ref=clip.name,
                audio_refs=[f"file:{path}"],
            )
            topic = settings.kafka.topic(TRACK_DISCOVERED)
            await producer.send_and_wait(
                topic, good_track.dumps(), key=good_track.track_id.encode()
            )
            key = f"test:{item.kind}".encode()
            await producer.send_and_wait(settings.kafka.topic(item.topic), item.value, key=key)
        await producer.send_and_wait(
            settings.kafka.topic(PLAYLISTS), spotify_playlist.encode(), key=b"good"
        )
    finally:
        await producer.stop()


async def _parked_values(settings: Settings) -> dict[str, bytes]:
    """The original value each dead letter of the corpus holds, by kind."""
    records = await read_committed(settings.kafka.bootstrap, settings.kafka.topic(DEAD_LETTERS))
    letters = [read_dead_letter(record.value or b"") for record in records]
    return {
        letter.key.decode().removeprefix("test:"): letter.value
        for letter in letters
        if letter.key and letter.key.startswith(b"test:")
    }


async def _outcomes(settings: Settings, tracks: TrackStore) -> dict[str, tuple[str, str]]:
    """What became of each kind so far: (outcome, reason), by kind."""
    found: dict[str, tuple[str, str]] = {}
    for record in await read_committed(
        settings.kafka.bootstrap, settings.kafka.topic(DEAD_LETTERS)
    ):
        letter = read_dead_letter(record.value or b"")
        if letter.key and letter.key.startswith(b"test:"):
            found[letter.key.decode().removeprefix("test:")] = ("dead-letter", letter.reason)
    statuses: tuple[AudioStatus, ...] = ("unavailable", "failed")
    for status in statuses:
        for row in await tracks.with_status(status, 0, 1000):
            if row.track_id.startswith("test:") and not row.track_id.startswith("test:good-"):
                found[row.track_id.removeprefix("test:")] = (status, row.audio_error or "")
    return found
