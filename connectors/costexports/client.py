"""The export container, through azure-storage-blob's async client: manifests and partitions.

CSV partitions are read in chunks of ``CHUNK_BYTES`` (the first GET included); Parquet ones
through ``ranged``, a seekable file whose reads are ranged GETs. Every download is pinned to
the ETag listed (``If-Match``), so a partition rewritten while it is read fails instead of
mixing two versions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from connectors.costexports.errors import CorruptPartition, CostExportsError, storage_error
from connectors.costexports.mapping import Manifest, manifest_from_json
from connectors.costexports.ranged import RangedBlob
from core.settings.costs import CostsSettings

CHUNK_BYTES = 4 << 20
"""Bytes per download request (and most bytes of a partition held at a time)."""
RANGE_SECONDS = 300.0
"""Longest wait for one ranged download of a Parquet partition."""
MANIFEST = "manifest.json"


class ExportsClient:
    """Reads Cost Management exports from one container."""

    def __init__(self, container: ContainerClient) -> None:
        """Read from ``container`` (closed by ``close``)."""
        self._container = container

    @classmethod
    def from_settings(
        cls, settings: CostsSettings, credential: AsyncTokenCredential | None = None
    ) -> ExportsClient:
        """A client for ``settings``: the connection string, else the account URL read with
        ``credential`` (Warden's Azure identity)."""
        options: dict[str, Any] = {
            "max_single_get_size": CHUNK_BYTES,
            "max_chunk_get_size": CHUNK_BYTES,
        }
        secret = settings.connection_string.get_secret_value()
        if secret:
            container = ContainerClient.from_connection_string(
                secret, settings.container, **options
            )
        else:
            container = ContainerClient(
                str(settings.account_url), settings.container, credential=credential, **options
            )
        return cls(container)

    async def close(self) -> None:
        """Close the HTTP pipeline."""
        await self._container.close()

    async def manifest_names(self, prefix: str) -> list[str]:
        """The manifests under ``prefix`` (a folder; "" for the whole container), sorted."""
        start = f"{prefix}/" if prefix else None
        names: list[str] = []
        try:
            async for blob in self._container.list_blobs(name_starts_with=start):
                if blob.name.rsplit("/", 1)[-1] == MANIFEST:
                    names.append(blob.name)
        except AzureError as exc:
            raise storage_error(exc, f"the listing of {self._container.container_name}") from None
        return sorted(names)

    async def manifest(self, name: str) -> Manifest:
        """The run the manifest ``name`` describes (``InvalidPayload`` when unreadable)."""
        try:
            downloader = await self._container.download_blob(name)
            body = await downloader.readall()
        except AzureError as exc:
            raise storage_error(exc, name) from None
        try:
            parsed = json.loads(body.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            parsed = {"blobs": f"not JSON: {exc}"}
        return manifest_from_json(name, parsed if isinstance(parsed, dict) else {})

    async def etags(self, folder: str) -> dict[str, str]:
        """The ETag of every blob under ``folder``, by name."""
        found: dict[str, str] = {}
        try:
            async for blob in self._container.list_blobs(name_starts_with=f"{folder}/"):
                found[blob.name] = str(blob.etag)
        except AzureError as exc:
            raise storage_error(exc, f"the listing of {folder}") from None
        return found

    async def chunks(self, name: str, etag: str) -> AsyncIterator[bytes]:
        """The partition's bytes as they arrive, as of ``etag``.

        ``CorruptPartition`` when it is gone; ``CostExportsError`` for other refusals (a blob
        rewritten since it was listed among them: the next run reads the new version).
        """
        try:
            downloader = await self._container.download_blob(
                name, etag=etag, match_condition=MatchConditions.IfNotModified
            )
            async for chunk in downloader.chunks():
                yield chunk
        except ResourceNotFoundError:
            raise CorruptPartition("the manifest lists it but the blob is missing") from None
        except AzureError as exc:
            raise storage_error(exc, name) from None

    async def ranged(self, name: str, etag: str) -> RangedBlob:
        """The partition as of ``etag`` as a seekable file for a worker thread: each read is
        a ranged download run on this event loop (which must stay free while it reads).

        ``CorruptPartition`` when it is gone; its reads raise ``CostExportsError`` (as
        ``chunks`` does) when storage refuses them.
        """
        blob = self._container.get_blob_client(name)
        try:
            properties = await blob.get_blob_properties(
                etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceNotFoundError:
            raise CorruptPartition("the manifest lists it but the blob is missing") from None
        except AzureError as exc:
            raise storage_error(exc, name) from None
        loop = asyncio.get_running_loop()

        def fetch(offset: int, length: int) -> bytes:
            ranged = asyncio.run_coroutine_threadsafe(self._range(name, etag, offset, length), loop)
            try:
                return ranged.result(timeout=RANGE_SECONDS)
            except TimeoutError:
                ranged.cancel()
                raise CostExportsError(f"blob storage did not answer a read of {name}") from None

        return RangedBlob(fetch, int(properties.size))

    async def _range(self, name: str, etag: str, offset: int, length: int) -> bytes:
        """``length`` bytes of the partition from ``offset``, as of ``etag``."""
        try:
            downloader = await self._container.download_blob(
                name,
                offset=offset,
                length=length,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
            return await downloader.readall()
        except ResourceNotFoundError:
            raise CorruptPartition("the blob was deleted while it was read") from None
        except AzureError as exc:
            raise storage_error(exc, name) from None
