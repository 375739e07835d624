"""Atlassian Document Format: the comment bodies Jira's REST API v3 takes and gives.

Warden writes plain text: each line becomes a paragraph of one text node (an empty line an
empty paragraph, which ADF allows). Reading flattens paragraphs back into lines.
"""

from __future__ import annotations

from typing import Any


def document(text: str) -> dict[str, Any]:
    """``text`` as an ADF document: ``{"type": "doc", "version": 1, "content": [...]}``."""
    paragraphs: list[dict[str, Any]] = []
    for line in text.splitlines() or [""]:
        node: dict[str, Any] = {"type": "paragraph", "content": []}
        if line:
            node["content"].append({"type": "text", "text": line})
        paragraphs.append(node)
    return {"type": "doc", "version": 1, "content": paragraphs}


def plain_text(doc: Any) -> str:
    """The text of an ADF document, a paragraph per line ("" when it is not a document)."""
    if not isinstance(doc, dict) or doc.get("type") != "doc":
        return ""
    lines = []
    for block in doc.get("content") or []:
        nodes = block.get("content") if isinstance(block, dict) else None
        parts = [str(n.get("text", "")) for n in nodes or [] if isinstance(n, dict)]
        lines.append("".join(parts))
    return "\n".join(lines)
