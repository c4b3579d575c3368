"""What kind of file a path holds, from its first bytes (and, where the bytes cannot
tell, its extension): so that a clip that is not audio is named as such before a
decoder reads it, and a sound or picture given where sentences are expected is caught."""
from __future__ import annotations

import os

__all__ = ["file_kind", "AUDIO_EXTENSIONS", "IMAGE_EXTENSIONS"]

#: what a folder of clips or pictures is searched for (by name, case-insensitive)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".m4a")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

# (kind, format, test on the first 16 bytes)
_SIGNATURES = (
    ("audio", "WAV", lambda b: b[:4] in (b"RIFF", b"RIFX", b"RF64") and b[8:12] == b"WAVE"),
    ("audio", "Wave64", lambda b: b[:4] == b"riff"),
    ("audio", "FLAC", lambda b: b[:4] == b"fLaC"),
    ("audio", "Ogg", lambda b: b[:4] == b"OggS"),
    ("audio", "MP3", lambda b: b[:3] == b"ID3" or (len(b) > 1 and b[0] == 0xFF and b[1] & 0xE0 == 0xE0)),
    ("audio", "AIFF", lambda b: b[:4] == b"FORM" and b[8:12] in (b"AIFF", b"AIFC")),
    ("audio", "AU", lambda b: b[:4] == b".snd"),
    ("audio", "CAF", lambda b: b[:4] == b"caff"),
    ("audio", "MPEG-4 audio", lambda b: b[4:8] == b"ftyp"),
    ("image", "PNG", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
    ("image", "JPEG", lambda b: b[:3] == b"\xff\xd8\xff"),
    ("image", "GIF", lambda b: b[:4] in (b"GIF8",)),
    ("image", "BMP", lambda b: b[:2] == b"BM"),
    ("image", "TIFF", lambda b: b[:4] in (b"II*\x00", b"MM\x00*")),
    ("image", "WebP", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("archive", "zip (or .npz)", lambda b: b[:4] == b"PK\x03\x04"),
    ("document", "PDF", lambda b: b[:5] == b"%PDF-"),
)


def file_kind(path):
    """``(kind, format)`` of the file at ``path``: kind is "audio", "image", "archive",
    "document", "text", "empty" or None (unknown), format a short name ("WAV", "PNG",
    "UTF-8 text", ...). The JPEG and MPEG-audio headers overlap (0xFF 0xE.); a file
    named ``.jpg``/``.jpeg`` with such a header is an image."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "empty", "an empty file"
    ext = os.path.splitext(os.fspath(path))[1].lower()
    for kind, fmt, test in _SIGNATURES:
        if test(head):
            if fmt == "MP3" and head[:3] == b"\xff\xd8\xff":
                continue                       # a JPEG's marker, not an MPEG frame
            return kind, fmt
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:      # not just a character cut at 512 bytes
                return None, f"unknown ({ext or 'no extension'})"
        return "text", "text"
    return None, f"unknown ({ext or 'no extension'})"
