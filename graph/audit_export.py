"""``audit export``: one requirement's evidence for one period, as a zip an auditor keeps.

The zip holds ``entries.jsonl`` (the Audit Log entries of every request opened for that
requirement and period, one canonical JSON entry a line, in chain order, read back from
SharePoint), the evidence files those entries record under
``files/<request>/<version>-<name>`` (downloaded from the *Evidence* library and streamed
into the zip piece by piece, hashed on the way), and ``manifest.json``: each file's SHA-256
and size next to the hash its entry recorded, the entries' first and last hash, whether the
whole chain verified when the export was made, Warden's version and when it was generated.

The zip is written next to ``out`` and renamed into place once complete, so a failed export
leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import tomllib
import zipfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from msgraph.graph_service_client import GraphServiceClient
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.audit_chain import AuditAction, AuditEntry, canonical_json, verify
from graph.audit_mirror import audit_log_ref, item_body
from graph.audit_verify import EvidenceLibrary, SubmittedFile, read_log, submitted_file
from graph.evidence_files import sha256_of
from graph.sharepoint import SitePath

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
_UNSAFE = str.maketrans({"/": "_", "\\": "_", "\x00": "_"})


@dataclass(frozen=True)
class ExportedFile:
    """One evidence file in the zip."""

    path: str
    request_id: str
    submission: int
    item_id: str
    size: int
    sha256: str
    recorded_sha256: str

    def to_json(self) -> dict[str, Any]:
        """The file's manifest record."""
        return {
            "path": self.path,
            "requestId": self.request_id,
            "submission": self.submission,
            "itemId": self.item_id,
            "size": self.size,
            "sha256": self.sha256,
            "recordedSha256": self.recorded_sha256,
            "matches": self.sha256 == self.recorded_sha256,
        }


@dataclass
class ExportSummary:
    """What an export wrote: the zip, how many entries, which files."""

    out: Path
    entries: int
    chain_verified: bool
    files: list[ExportedFile] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def warden_version() -> str:
    """Warden's version: the installed package's, else ``pyproject.toml``'s."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version("warden")
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError, KeyError):
        return str(tomllib.loads(PYPROJECT.read_text("utf-8"))["project"]["version"])
    return "unknown"


def select_entries(entries: list[AuditEntry], requirement: str, period: str) -> list[AuditEntry]:
    """The entries of the requests opened for ``requirement`` in ``period``, in order."""
    requests = {
        entry.request_id
        for entry in entries
        if entry.action is AuditAction.REQUESTED
        and entry.requirement_id == requirement
        and entry.details.get("period") == period
    }
    return [entry for entry in entries if entry.request_id in requests]


async def export(
    graph: GraphServiceClient,
    site: SitePath,
    *,
    requirement: str,
    period: str,
    out: Path,
    library: EvidenceLibrary,
) -> ExportSummary:
    """Write the zip of ``requirement`` in ``period`` to ``out`` (see the module doc)."""
    bodies = [item_body(item) for item in await read_log(graph, await audit_log_ref(graph, site))]
    chain = verify([body if isinstance(body, dict) else {} for body in bodies])
    entries = [entry for entry in map(_entry, bodies) if entry is not None]
    chosen = select_entries(entries, requirement, period)
    summary = ExportSummary(out, len(chosen), chain.ok)
    partial = out.with_name(out.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            lines = b"".join(canonical_json(entry.to_json()) + b"\n" for entry in chosen)
            archive.writestr("entries.jsonl", lines)
            for entry in chosen:
                file = submitted_file(entry)
                if file is not None:
                    summary.files.append(await _add_file(archive, library, file))
            summary.manifest = _manifest(site, requirement, period, chosen, lines, summary)
            manifest = json.dumps(summary.manifest, indent=2, ensure_ascii=False)
            archive.writestr("manifest.json", manifest + "\n")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return summary


async def _add_file(
    archive: zipfile.ZipFile, library: EvidenceLibrary, file: SubmittedFile
) -> ExportedFile:
    """Stream one evidence file into the zip, hashing it on the way."""
    path = f"files/{file.request_id}/{file.submission}-{file.name.translate(_UNSAFE)}"
    with archive.open(path, "w", force_zip64=True) as sink:
        async with library.filer.download(file.item_id) as body:
            size, digest = await sha256_of(_tee(body, sink))
    return ExportedFile(
        path, file.request_id, file.submission, file.item_id, size, digest, file.sha256
    )


async def _tee(chunks: AsyncIterable[bytes], sink: IO[bytes]) -> AsyncIterator[bytes]:
    """Pass ``chunks`` on, writing each to ``sink`` first."""
    async for chunk in chunks:
        sink.write(chunk)
        yield chunk


def _manifest(
    site: SitePath,
    requirement: str,
    period: str,
    chosen: list[AuditEntry],
    lines: bytes,
    summary: ExportSummary,
) -> dict[str, Any]:
    """The manifest of an export."""
    first, last = (chosen[0], chosen[-1]) if chosen else (None, None)
    return {
        "wardenVersion": warden_version(),
        "generatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "site": str(site),
        "requirement": requirement,
        "period": period,
        "entries": {
            "path": "entries.jsonl",
            "count": len(chosen),
            "sha256": hashlib.sha256(lines).hexdigest(),
            "firstSeq": first.seq if first else None,
            "lastSeq": last.seq if last else None,
            "firstHash": first.hash if first else None,
            "lastHash": last.hash if last else None,
        },
        "chainVerified": summary.chain_verified,
        "files": [file.to_json() for file in summary.files],
    }


def _entry(body: object) -> AuditEntry | None:
    """``body`` as an audit entry, or None when it is not a well-formed one."""
    if not isinstance(body, dict):
        return None
    try:
        return AuditEntry.model_validate(body)
    except ValueError:
        return None


def print_export_summary(summary: ExportSummary, console: Console) -> None:
    """Show what an export wrote: its files with their hashes, then the zip."""
    table = Table(title=f"Export {escape(summary.out.name)}")
    for heading in ("File", "Size", "SHA-256", "Matches entry"):
        table.add_column(heading)
    for file in summary.files:
        matches = "[green]yes[/]" if file.sha256 == file.recorded_sha256 else "[red]no[/]"
        table.add_row(escape(file.path), str(file.size), file.sha256, matches)
    console.print(table)
    chain = "[green]verified[/]" if summary.chain_verified else "[red]does not verify[/]"
    console.print(
        f"{summary.entries} audit entries (the chain {chain}) → {escape(str(summary.out))}"
    )
