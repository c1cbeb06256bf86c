"""A reader for R's lazy-load databases (`<name>.rdb` + `<name>.rdx`), enough for data
packages whose objects are character vectors (e.g. Debian's `r-cran-janeaustenr`), without R.

Format (R's `makeLazyLoadDB`): the `.rdx` file is a gzip- or zlib-compressed R serialisation
of `list(variables = list(<name> = c(offset, length), ...), references = ..., compressed =
...)`; each object sits in the `.rdb` file at its offset as a 4-byte big-endian uncompressed
length followed by a zlib stream of its serialisation. A serialisation ("X\\n", XDR, versions
2 and 3) is a tree of typed items; only the types such data uses are read here, and anything
else raises `DatasetError` naming the type.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

from .base import DatasetError

_NIL = 254
_SYMBOL, _PAIRLIST, _CHARS, _LOGICAL, _INTEGER, _REAL, _STRINGS, _LIST = 1, 2, 9, 10, 13, 14, 16, 19
_REFERENCE = 255
_SPECIAL_ENVIRONMENTS = {253, 252, 251, 242, 241, 247}  # global, unbound, missing, empty, base
_HAS_ATTRIBUTES, _HAS_TAG = 1 << 9, 1 << 10


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data, self.position, self.source = data, 0, source
        self.references: list[Any] = []

    def _fail(self, what: str) -> DatasetError:
        return DatasetError(f"{self.source}: not a readable R serialisation ({what})")

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise self._fail("cut short")
        chunk = self.data[self.position : self.position + count]
        self.position += count
        return chunk

    def integer(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def header(self) -> None:
        if self.take(2) != b"X\n":
            raise self._fail("only the XDR format 'X' is supported")
        version = self.integer()
        self.take(8)  # the R versions that wrote it and can read it
        if version == 3:
            self.take(self.integer())  # the native encoding's name
        elif version != 2:
            raise self._fail(f"serialisation version {version}")

    def item(self) -> Any:
        flags = self.integer()
        kind = flags & 0xFF
        if kind == _NIL or kind in _SPECIAL_ENVIRONMENTS:
            return None
        if kind == _REFERENCE:
            index = flags >> 8 or self.integer()
            return self.references[index - 1]
        if kind == _SYMBOL:
            name = self.item()
            self.references.append(name)
            return name
        if kind == _PAIRLIST:
            return self.pairlist(flags)
        if kind == _CHARS:
            length = self.integer()
            return None if length == -1 else self.take(length).decode("utf-8", "replace")
        if kind in (_LOGICAL, _INTEGER):
            count = self.integer()
            value: Any = list(struct.unpack(f">{count}i", self.take(4 * count)))
        elif kind == _REAL:
            count = self.integer()
            value = list(struct.unpack(f">{count}d", self.take(8 * count)))
        elif kind in (_STRINGS, _LIST):
            value = [self.item() for _ in range(self.integer())]
        else:
            raise self._fail(f"unsupported item type {kind}")
        if flags & _HAS_ATTRIBUTES:
            attributes = self.item()
            names = attributes.get("names") if isinstance(attributes, dict) else None
            if kind == _LIST and names is not None:
                return dict(zip(names, value, strict=True))
        return value

    def pairlist(self, flags: int) -> dict[str, Any]:
        """A pairlist (attributes, argument lists) as a dict from tag to value."""
        result: dict[str, Any] = {}
        while True:
            if flags & _HAS_ATTRIBUTES:
                self.item()
            tag = self.item() if flags & _HAS_TAG else str(len(result))
            result[str(tag)] = self.item()
            flags = self.integer()
            if flags & 0xFF != _PAIRLIST:
                if flags & 0xFF != _NIL:
                    raise self._fail("a pairlist that does not end in NULL")
                return result


def unserialize(data: bytes, source: str = "<bytes>") -> Any:
    """The R object serialised (XDR) in `data`: character vectors become lists of str, named
    lists dicts, integer/real vectors lists of numbers, NULL None."""
    reader = _Reader(data, source)
    reader.header()
    return reader.item()


def _decompress_index(raw: bytes, path: Path) -> bytes:
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw)
    try:
        return zlib.decompress(raw[4:])
    except zlib.error as error:
        raise DatasetError(f"{path}: not a compressed R lazy-load index ({error})") from error


def read_lazy_load(directory: Path, stem: str = "Rdata") -> dict[str, Any]:
    """Every object of the lazy-load database `<stem>.rdb` / `<stem>.rdx` in `directory`, by
    name.

    **Raises:** `DatasetError` naming the file if either is corrupt or cut short.
    """
    index_path, data_path = directory / f"{stem}.rdx", directory / f"{stem}.rdb"
    try:
        index = unserialize(_decompress_index(index_path.read_bytes(), index_path), str(index_path))
    except (OSError, EOFError) as error:
        raise DatasetError(f"{index_path}: unreadable ({error})") from error
    if not isinstance(index, dict) or not isinstance(index.get("variables"), dict):
        raise DatasetError(f"{index_path}: not an R lazy-load index (no 'variables')")
    data = data_path.read_bytes()
    objects = {}
    for name, location in index["variables"].items():
        offset, length = location
        if offset + length > len(data) or length < 4:
            raise DatasetError(f"{data_path}: object {name!r} lies beyond the end of the file")
        chunk = data[offset : offset + length]
        try:
            payload = zlib.decompress(chunk[4:])
        except zlib.error as error:
            raise DatasetError(f"{data_path}: object {name!r} is corrupt ({error})") from error
        if len(payload) != struct.unpack(">I", chunk[:4])[0]:
            raise DatasetError(f"{data_path}: object {name!r} has the wrong length")
        objects[name] = unserialize(payload, f"{data_path}:{name}")
    return objects
