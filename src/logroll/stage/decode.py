"""Bytes in: compressed files decompressed as a stream, any codec turned into UTF-8.

Memory stays bounded (output is taken in pieces of at most one chunk per call where the codec
allows it). A truncated or corrupt archive ends the stream early with its reason: the records
before it are still read and counted, and the caller fails the file.
"""

from __future__ import annotations

import bz2
import codecs
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .dialect import CHUNK, Dialect, FileUnusable

try:  # DuckDB reads .zst itself, but silently returns nothing for a truncated one
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

_SUFFIX = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2", ".xz": "xz"}


def compression_of(path: Path, dialect: Dialect) -> str:
    """The codec a file is read with: the dialect's, or (None, "auto") the one its suffix names."""
    if dialect.compression and dialect.compression != "auto":
        return dialect.compression
    return _SUFFIX.get(Path(path).suffix.lower(), "none")


def _decompressor(kind: str) -> Any:
    if kind == "gzip":
        return zlib.decompressobj(wbits=47)  # gzip or zlib header; CRC32 + length checked at the end
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor()
    if kind == "zstd":
        if zstandard is None:
            raise FileUnusable("zstd input needs the zstandard package: pip install zstandard")
        return zstandard.ZstdDecompressor().decompressobj()
    raise FileUnusable(f"unknown compression {kind!r}")


def decompressed_chunks(
    path: Path, kind: str, failure: list[str], size: int = 1 << 18, chunk: int = CHUNK
) -> Iterator[bytes]:
    """The file's bytes, decompressed as a stream (memory stays bounded: output is taken in pieces
    of at most CHUNK per call where the codec allows it). A truncated or corrupt archive ends the
    stream early with a reason appended to `failure`; what came before it is yielded."""
    with open(path, "rb") as fh:
        if kind == "none":
            while True:
                b = fh.read(chunk)
                if not b:
                    return
                yield b
        dec = _decompressor(kind)
        members = 0
        try:
            while True:
                data = fh.read(size)
                if not data:
                    break
                while data:
                    if kind == "gzip":
                        out = dec.decompress(data, chunk)
                        data = dec.unconsumed_tail
                    else:
                        out = dec.decompress(data)
                        data = b""
                    if out:
                        yield out
                    if getattr(dec, "eof", False):  # end of one member/frame: maybe another follows
                        rest = dec.unused_data + data
                        members += 1
                        data = rest
                        if not rest:
                            rest = fh.read(size)
                            data = rest
                        if not rest:
                            return
                        dec = _decompressor(kind)
            if kind == "gzip":
                while dec.unconsumed_tail or not dec.eof:
                    out = dec.decompress(dec.unconsumed_tail, chunk)
                    if out:
                        yield out
                    elif not dec.unconsumed_tail:
                        break
            if not getattr(dec, "eof", True):
                failure.append(f"truncated {kind} archive (ends inside the stream)")
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as e:
            failure.append(f"corrupt {kind} archive: {e}")
        except Exception as e:  # zstandard.ZstdError and friends
            if zstandard is not None and isinstance(e, zstandard.ZstdError):
                failure.append(f"corrupt {kind} archive: {e}")
            else:
                raise


def _bad_bytes(err: UnicodeDecodeError) -> tuple[str, int]:
    # Undecodable input becomes lone surrogates: written with surrogatepass they are invalid UTF-8,
    # so the sanitizer rejects exactly the lines that held them.
    return "".join(chr(0xDC00 + b) for b in err.object[err.start : err.end]), err.end


codecs.register_error("logroll-mark", _bad_bytes)


def utf8_chunks(raw: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """Chunks of raw bytes as UTF-8 (BOM dropped; a UTF-16 BOM overrides a UTF-8 default)."""
    it = iter(raw)
    first = b""
    for first in it:
        if first:
            break
    enc = codecs.lookup(encoding).name
    if first.startswith(codecs.BOM_UTF8) and enc in ("utf-8", "utf-8-sig"):
        first = first[3:]
    elif first[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) and enc in ("utf-8", "utf-8-sig", "utf-16"):
        enc = "utf-16"
    if enc in ("utf-8", "utf-8-sig"):
        if first:
            yield first
        yield from it
        return
    dec = codecs.getincrementaldecoder(enc)(errors="logroll-mark")

    def conv(b: bytes, final: bool = False) -> bytes:
        text = dec.decode(b, final)
        if text.startswith("\ufeff"):
            text = text[1:]
        return text.encode("utf-8", "surrogatepass")

    yield conv(first)
    for b in it:
        yield conv(b)
    yield conv(b"", True)
