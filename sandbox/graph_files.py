"""Drive items of the Graph sandbox's document libraries, and their bytes on disk.

A library (``SpList`` with a ``drive_id``) holds a tree of ``DriveItem`` folders and files;
each file is also a list item of the library (its ``listItem``). File bytes live under a
directory (``DriveFiles``), one file per drive item, never in memory, so large uploads are
fine. A driveItem's eTag is ``"{GUID},{version}"`` and its cTag ``"c:{GUID},{version}"``.
"""

from __future__ import annotations

import secrets
import shutil
import string
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_item_id() -> str:
    """Return a SharePoint-style drive item id (``01`` and 32 upper-case characters)."""
    return "01" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(32))


@dataclass
class DriveItem:
    """A folder or file of a library; ``list_item_id`` links a file to its listItem."""

    id: str
    name: str
    parent_id: str | None
    folder: bool
    created: str
    modified: str
    size: int = 0
    version: int = 1
    list_item_id: int | None = None
    seq: int = 0
    modified_by: dict[str, Any] = field(default_factory=dict)
    guid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())

    @property
    def etag(self) -> str:
        """The eTag, quotes included."""
        return f'"{{{self.guid}}},{self.version}"'

    @property
    def ctag(self) -> str:
        """The cTag (content tag), quotes included."""
        return f'"c:{{{self.guid}}},{self.version}"'


def render_item(
    item: DriveItem, drive_id: str, web_root: str, children: int, path: str
) -> dict[str, Any]:
    """Return the driveItem JSON; ``path`` is the parent's ``/drive/root:...`` path."""
    body: dict[str, Any] = {
        "@odata.etag": item.etag,
        "id": item.id,
        "name": item.name,
        "eTag": item.etag,
        "cTag": item.ctag,
        "size": item.size,
        "createdDateTime": item.created,
        "lastModifiedDateTime": item.modified,
        "webUrl": f"{web_root}{path.removeprefix('/drive/root:')}/{item.name}".rstrip("/"),
        "createdBy": {"application": {"displayName": "Warden"}},
        "lastModifiedBy": item.modified_by or {"application": {"displayName": "Warden"}},
        "fileSystemInfo": {
            "createdDateTime": item.created,
            "lastModifiedDateTime": item.modified,
        },
    }
    if item.parent_id is not None:
        body["parentReference"] = {
            "driveType": "documentLibrary",
            "driveId": drive_id,
            "id": item.parent_id,
            "path": path,
        }
    else:
        body["root"] = {}
    if item.folder:
        body["folder"] = {"childCount": children}
    else:
        body["file"] = {"mimeType": _mime(item.name)}
    return body


def _mime(name: str) -> str:
    """Return a MIME type guessed from a file name."""
    import mimetypes

    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class DriveFiles:
    """File bytes of every drive, one file per drive item under ``root``."""

    def __init__(self, root: Path) -> None:
        """Keep files under ``root`` (created if missing)."""
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, drive_id: str, item_id: str) -> Path:
        """Return where a drive item's bytes are stored."""
        return self.root / drive_id.replace("!", "_") / item_id

    def upload_path(self, token: str) -> Path:
        """Return the temporary file of an upload session."""
        folder = self.root / ".uploads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / token

    def commit(self, source: Path, drive_id: str, item_id: str) -> int:
        """Move a finished upload into place; returns its size."""
        target = self.path(drive_id, item_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        source.replace(target)
        return target.stat().st_size

    def clear(self) -> None:
        """Delete every stored file."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
