"""What Warden accepts as an evidence file, wherever it comes from: size limits, upload
fragment sizes Graph allows, and the executables it never files (by name or first bytes).

The chat (``bot.evidence_files``) refuses early with these rules; the SharePoint filer
(``graph.evidence_files``) enforces them while streaming.
"""

from __future__ import annotations

from dataclasses import dataclass

FRAGMENT_UNIT = 320 * 1024
"""Upload session fragments other than the last are a multiple of this many bytes."""

MAX_FRAGMENT = 60 * 1024 * 1024
"""Graph's largest fragment."""

EXECUTABLE_SUFFIXES = frozenset(
    {
        *(".apk", ".app", ".bat", ".cmd", ".com", ".cpl", ".dll", ".dmg", ".exe", ".hta"),
        *(".jar", ".js", ".jse", ".lnk", ".msi", ".msp", ".ps1", ".psm1", ".reg", ".scr"),
        *(".sh", ".so", ".sys", ".vb", ".vbe", ".vbs", ".ws", ".wsf"),
    }
)
"""File name endings Warden never files as evidence."""

EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"#!", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe")
"""Leading bytes of PE, ELF, script, Mach-O (fat and 64-bit) executables."""


@dataclass(frozen=True)
class UploadLimits:
    """Size limits and retry budget of evidence uploads."""

    max_bytes: int = 250 * 1024 * 1024
    simple_limit: int = 4 * 1024 * 1024
    fragment: int = 16 * FRAGMENT_UNIT
    fragment_tries: int = 4
    restarts: int = 1
    retry_wait: float = 0.5
    max_wait: float = 30.0

    def __post_init__(self) -> None:
        """Refuse limits Graph would refuse."""
        if self.fragment % FRAGMENT_UNIT or not 0 < self.fragment <= MAX_FRAGMENT:
            raise ValueError("fragment must be a multiple of 320 KiB, at most 60 MiB")
        if self.max_bytes < 1 or self.simple_limit < 0 or self.fragment_tries < 1:
            raise ValueError("max_bytes and fragment_tries must be positive")


def is_executable(name: str, head: bytes | bytearray = b"") -> bool:
    """Tell whether a file name or its first bytes are those of an executable."""
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return suffix in EXECUTABLE_SUFFIXES or head.startswith(EXECUTABLE_MAGIC)
