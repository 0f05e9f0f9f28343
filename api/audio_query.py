"""``POST /recommend/audio``: the neighbours of an uploaded clip in the serving snapshot's space.

Reads an audio upload (multipart field or raw body; mp3, ogg, wav or flac), the model weights
(once, on the first query of each model version) and the current snapshot; writes JSON. The clip
goes through the extractor of the snapshot's model version (not necessarily the node's
configured one: during a reindex the node may serve another) and the snapshot's ``transform``,
so it lands in the same space as the indexed vectors. Extraction runs in threads, at most
``api.audio_concurrency`` at once, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from api.errors import json_error
from api.recommend_params import AudioParams, from_query
from api.recommend_views import answer_json, parse
from api.recommendations import rank
from api.request_args import current_snapshot, off_loop, query_threads
from config.settings import ModelSettings, Settings
from features.errors import AudioError, FeatureError, NonFiniteEmbedding
from features.extractor import Embedding, Extractor

_CHUNK = 1 << 16

#: Builds an extractor for model settings (the real loader; a parameter so it is passed in).
Loader = Callable[[ModelSettings], Extractor]


class AudioQueries:
    """Extractors loaded on first use, one per model version, and the concurrency limit."""

    def __init__(self, settings: Settings, loader: Loader | None = None) -> None:
        self.settings = settings
        self._loader = loader or _load
        self._extractors: dict[str, Extractor] = {}
        self._loading = asyncio.Lock()
        self._slots = asyncio.Semaphore(settings.api.audio_concurrency)

    async def extractor(self, model_version: str) -> Extractor:
        """The extractor of ``model_version``, loaded (in a thread) the first time.

        Raises:
            FeatureError: The weights or calibration of that version are missing or differ.
        """
        async with self._loading:
            found = self._extractors.get(model_version)
            if found is None:
                model = self.settings.model.model_copy(update={"version": model_version})
                found = await asyncio.to_thread(self._loader, model)
                self._extractors[model_version] = found
            return found

    async def embed(self, model_version: str, audio: bytes) -> Embedding:
        """Decode and embed one clip, waiting for a free slot first.

        Raises:
            AudioError: The bytes are not audio the decoder reads.
            FeatureError: The model cannot be loaded or gave a non-finite vector.
        """
        extractor = await self.extractor(model_version)
        async with self._slots:
            return await asyncio.to_thread(_embed, extractor, audio)


def _load(model: ModelSettings) -> Extractor:
    # Imported here: the network is built only when the first audio query arrives.
    from features.extractor import load_extractor

    return load_extractor(model)


def _embed(extractor: Extractor, audio: bytes) -> Embedding:
    return extractor.embed([extractor.decode(audio)])[0]


async def read_upload(request: web.Request, cap: int) -> bytes:
    """The uploaded file's bytes: the first file part of a multipart form, or the raw body.

    A declared length above ``cap`` is refused before anything is read, and reading stops as
    soon as more than ``cap`` bytes arrived, so a large upload never sits in memory.
    """
    too_large = web.HTTPRequestEntityTooLarge(
        max_size=cap,
        actual_size=request.content_length or cap + 1,
        text=json.dumps({"error": f"the audio file is larger than {cap} bytes"}),
        content_type="application/json",
    )
    if request.content_length is not None and request.content_length > cap + 64 * 1024:
        # The multipart framing adds a little; more than that cannot fit.
        raise too_large
    if request.content_type.startswith("multipart/"):
        try:
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, BodyPartReader) and (
                    part.filename or part.name in {"file", "audio"}
                ):
                    return await _read_capped(part.read_chunk, cap, too_large)
        except (ValueError, HttpProcessingError) as exc:
            msg = f"file: the multipart body cannot be read ({exc.__class__.__name__})"
            raise json_error(web.HTTPBadRequest, msg) from None
        raise json_error(web.HTTPBadRequest, "file: the form holds no file part")
    if request.content_length is not None and request.content_length > cap:
        raise too_large
    return await _read_capped(request.content.read, cap, too_large)


async def _read_capped(
    read: Callable[[int], Awaitable[bytes]], cap: int, too_large: web.HTTPException
) -> bytes:
    data = bytearray()
    while True:
        chunk = await read(_CHUNK)
        if not chunk:
            break
        data += chunk
        if len(data) > cap:
            raise too_large
    return bytes(data)


audio_queries_key = web.AppKey("audio_queries", AudioQueries)


async def recommend_audio(request: web.Request) -> web.Response:
    """``POST /recommend/audio?k=10``: tracks that sound like the uploaded clip."""
    queries = request.app[audio_queries_key]
    params = parse(AudioParams, from_query(request.query, AudioParams.model_fields))
    audio = await read_upload(request, queries.settings.api.max_upload_bytes)
    if not audio:
        raise json_error(web.HTTPBadRequest, "file: the upload is empty")
    snapshot = current_snapshot(request)
    model_version = snapshot.manifest.model_version
    try:
        embedding = await queries.embed(model_version, audio)
    except AudioError as exc:
        raise json_error(
            web.HTTPUnsupportedMediaType, f"the upload cannot be decoded as audio: {exc}"
        ) from None
    except NonFiniteEmbedding as exc:
        raise json_error(web.HTTPUnprocessableEntity, str(exc)) from None
    except FeatureError as exc:
        raise json_error(
            web.HTTPServiceUnavailable, f"model {model_version} cannot be loaded here: {exc}"
        ) from None
    vector = snapshot.transform(embedding.vector)
    answer = await off_loop(
        query_threads(request), rank, snapshot, vector, params.k, params.filters(), params.diversity
    )
    return web.json_response(
        {
            **answer_json(snapshot, params.k, answer),
            "clip_tags": [[t, round(p, 4)] for t, p in embedding.top_tags()],
        }
    )
