"""The S3-compatible object store through aiobotocore: audio clips and index snapshots.

Reads the ``s3`` settings group; reads and writes objects in the configured bucket. Driver
errors leave as ``stores.errors`` types: ``StoreUnavailable`` (retriable: down, timed out, 5xx)
or ``StoreRejected``; a missing key as :class:`ObjectNotFound`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from config.settings import S3Settings
from stores.errors import DRIVER_ERRORS, StoreError, store_error

#: Bytes per part of a multipart upload (S3's minimum part is 5 MB).
PART_BYTES = 8 * 2**20
#: Bytes per read while downloading to a file.
READ_BYTES = 2**20


class ObjectNotFound(StoreError, KeyError):
    """No object under the requested key (not retriable)."""


@asynccontextmanager
async def s3_client(settings: S3Settings) -> AsyncIterator[Any]:
    """An aiobotocore S3 client for the configured endpoint and credentials."""
    config = AioConfig(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        # Path-style addressing: local and self-hosted servers have no per-bucket DNS names.
        s3={"addressing_style": "path"},
    )
    async with get_session().create_client(
        "s3",
        region_name=settings.region,
        endpoint_url=settings.url,
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key.get_secret_value(),
        config=config,
    ) as client:
        yield client


async def ensure_bucket(settings: S3Settings) -> bool:
    """Create the configured bucket unless it exists; returns whether it was created."""
    async with s3_client(settings) as s3:
        listing = await s3.list_buckets()
        if settings.bucket in {b["Name"] for b in listing.get("Buckets", [])}:
            return False
        try:
            await s3.create_bucket(Bucket=settings.bucket)
        except ClientError as exc:
            # Another process created it between the listing and the create.
            if exc.response.get("Error", {}).get("Code") in {
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            }:
                return False
            raise
    return True


class ObjectStore:
    """Put, get and delete whole objects in the project's bucket."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self._cm: Any = None
        self._client: Any = None

    async def start(self) -> None:
        """Open the client (one HTTP connection pool for the store's lifetime)."""
        self._cm = s3_client(self.settings)
        self._client = await self._cm.__aenter__()

    async def stop(self) -> None:
        """Close the client."""
        if self._cm is not None:
            await self._cm.__aexit__(None, None, None)
        self._cm = self._client = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def put(
        self,
        key: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store ``body`` under ``key``, replacing any previous object, with ``metadata``."""
        try:
            await self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=metadata or {},
            )
        except DRIVER_ERRORS as exc:
            raise store_error(exc, f"S3 put {key}") from exc

    async def get(self, key: str) -> bytes:
        """The bytes stored under ``key``.

        Raises:
            ObjectNotFound: Nothing is stored under ``key``.
        """
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as stream:
                data: bytes = await stream.read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise ObjectNotFound(key) from exc
            raise store_error(exc, f"S3 get {key}") from exc
        except DRIVER_ERRORS as exc:
            raise store_error(exc, f"S3 get {key}") from exc
        return data

    async def put_file(
        self, key: str, path: Path, content_type: str = "application/octet-stream"
    ) -> tuple[str, int]:
        """Upload a file part by part (multipart above one part), never whole in memory.

        Returns:
            The sha256 and size of what was sent, hashed while sending.
        """
        sha = hashlib.sha256()
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            first = await asyncio.to_thread(handle.read, PART_BYTES)
            sha.update(first)
            if len(first) < PART_BYTES:
                await self.put(key, first, content_type)
                return sha.hexdigest(), len(first)
            size = await self._put_parts(key, handle, first, sha, content_type)
        finally:
            await asyncio.to_thread(handle.close)
        return sha.hexdigest(), size

    async def _put_parts(
        self, key: str, handle: BinaryIO, first: bytes, sha: Any, content_type: str
    ) -> int:
        upload = await self._client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type
        )
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        size = 0
        try:
            chunk = first
            while chunk:
                number = len(parts) + 1
                sent = await self._client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"ETag": sent["ETag"], "PartNumber": number})
                size += len(chunk)
                chunk = await asyncio.to_thread(handle.read, PART_BYTES)
                sha.update(chunk)
            await self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # Leave no orphan parts behind a failed upload.
            await self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
            raise
        return size

    async def get_file(self, key: str, path: Path) -> tuple[str, int]:
        """Download an object into ``path`` chunk by chunk, never whole in memory.

        Returns:
            The sha256 and size of what was written, hashed while writing.

        Raises:
            ObjectNotFound: Nothing is stored under ``key``.
        """
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise ObjectNotFound(key) from exc
            raise
        sha = hashlib.sha256()
        size = 0
        handle = await asyncio.to_thread(path.open, "wb")
        try:
            async with response["Body"] as stream:
                while chunk := await stream.read(READ_BYTES):
                    sha.update(chunk)
                    size += len(chunk)
                    await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        return sha.hexdigest(), size

    async def head(self, key: str) -> dict[str, Any] | None:
        """The size, content type and metadata of the object under ``key``; ``None`` if absent."""
        try:
            response = await self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise store_error(exc, f"S3 head {key}") from exc
        except DRIVER_ERRORS as exc:
            raise store_error(exc, f"S3 head {key}") from exc
        return {
            "size": int(response.get("ContentLength", 0)),
            "content_type": str(response.get("ContentType", "")),
            "metadata": dict(response.get("Metadata", {})),
        }

    async def delete(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error (S3 semantics)."""
        try:
            await self._client.delete_object(Bucket=self.bucket, Key=key)
        except DRIVER_ERRORS as exc:
            raise store_error(exc, f"S3 delete {key}") from exc

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Every key under ``prefix``, across all listing pages."""
        async for key, _ in self.listing(prefix):
            yield key

    async def listing(self, prefix: str = "") -> AsyncIterator[tuple[str, datetime]]:
        """Every key under ``prefix`` with its last-modified time, across all listing pages."""
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], item["LastModified"]
        except DRIVER_ERRORS as exc:
            raise store_error(exc, f"S3 listing {prefix}") from exc
