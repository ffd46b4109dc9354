"""The bytes of a saved :class:`pyad.Function` (docs/FORMAT.md has every byte): a magic, a
container version, a CRC-32 of the rest, a JSON header (inputs, outputs, the scalar and strict
flags, each trace's guard descriptions for GuardError messages, the pyad version) and the C
program of every kept trace in the portable form of ``pyad_program_save`` (csrc/saved.c),
which has a checksum of its own and is validated completely by ``pyad_program_load``.

Written from a Function's traces (:class:`pyad._program.Program`) and read back into traces,
checked throughout: a damaged or hostile container raises :class:`pyad.errors.FormatError`.
Nothing in it is pickled, so reading bytes from anywhere runs no code of theirs.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any, NamedTuple

from pyad import _native, errors
from pyad._program import CMP, MAX_VARIANTS, Program
from pyad._version import __version__

MAGIC = b"PYADFUNC"
VERSION = 1  # the container's version; the C programs inside carry their own
_HEAD = struct.Struct("<8sII")  # magic, version, CRC-32 of everything after the head
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_META_KEYS = {"pyad", "name", "n_inputs", "n_outputs", "scalar", "strict", "traces"}
_GUARD_KEYS = {"where", "cmp", "held"}
_MAX_META = 1 << 26  # a JSON header past 64 MiB is no header pyad wrote


def write(programs: list[Program], name: str, strict: bool) -> bytes:
    """The container of a Function's traces ``programs`` (the first is the one it tries
    first), its name and its strict flag (see the module docstring)."""
    first = programs[0]
    meta = {
        "pyad": __version__,
        "name": name,
        "n_inputs": first.n_inputs,
        "n_outputs": first.n_outputs,
        "scalar": first.scalar,
        "strict": strict,
        "traces": [
            {
                "guards": [
                    {"where": w, "cmp": c, "held": h}
                    for w, c, h in zip(prog.where, prog.cmps, prog.held)
                ]
            }
            for prog in programs
        ],
    }
    header = json.dumps(meta, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    parts = [_U32.pack(len(header)), header, _U32.pack(len(programs))]
    for prog in programs:
        blob = _native.program_save(prog.p)
        parts += [_U64.pack(len(blob)), blob]
    body = b"".join(parts)
    return _HEAD.pack(MAGIC, VERSION, zlib.crc32(body)) + body


class _Reader:
    """Reads that raise FormatError, not IndexError or struct.error, at the end."""

    def __init__(self, data: memoryview) -> None:
        self.data, self.at = data, 0

    def take(self, n: int, what: str) -> memoryview:
        if n > len(self.data) - self.at:
            raise errors.FormatError(
                f"truncated: {what} needs {n} bytes at offset {self.at}, "
                f"{len(self.data) - self.at} remain"
            )
        self.at += n
        return self.data[self.at - n : self.at]

    def u32(self, what: str) -> int:
        return int(_U32.unpack(self.take(4, what))[0])

    def u64(self, what: str) -> int:
        return int(_U64.unpack(self.take(8, what))[0])


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_meta(meta: object) -> dict[str, Any]:
    """The JSON header, checked key by key and type by type."""
    if not isinstance(meta, dict) or set(meta) != _META_KEYS:
        keys = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise errors.FormatError(f"the header must have the keys {sorted(_META_KEYS)}: {keys}")
    for key in ("pyad", "name"):
        if not isinstance(meta[key], str):
            raise errors.FormatError(f"header key {key!r} must be a string")
    for key in ("n_inputs", "n_outputs"):
        if not _is_int(meta[key]) or not 0 <= meta[key] < 2**32:
            raise errors.FormatError(f"header key {key!r} must be a count, not {meta[key]!r}")
    for key in ("scalar", "strict"):
        if not isinstance(meta[key], bool):
            raise errors.FormatError(f"header key {key!r} must be true or false")
    if meta["scalar"] and meta["n_outputs"] != 1:
        raise errors.FormatError("a scalar function has one output")
    traces = meta["traces"]
    if not isinstance(traces, list) or not 1 <= len(traces) <= MAX_VARIANTS + 1:
        raise errors.FormatError(f"there must be 1 to {MAX_VARIANTS + 1} traces")
    for t, trace in enumerate(traces):
        if not isinstance(trace, dict) or set(trace) != {"guards"}:
            raise errors.FormatError(f"trace {t} must be an object with the key 'guards'")
        if not isinstance(trace["guards"], list):
            raise errors.FormatError(f"trace {t}: 'guards' must be a list")
        for g, guard in enumerate(trace["guards"]):
            if (
                not isinstance(guard, dict)
                or set(guard) != _GUARD_KEYS
                or not isinstance(guard["where"], str)
                or guard["cmp"] not in CMP
                or not isinstance(guard["held"], bool)
            ):
                raise errors.FormatError(
                    f"trace {t}, guard {g}: must be {{'where': str, 'cmp': one of {CMP}, "
                    "'held': bool}"
                )
    return meta


class Contents(NamedTuple):
    """What a container holds: a Function's traces, its strict flag and its name."""

    programs: list[Program]
    strict: bool
    name: str


def read(data: bytes | bytearray | memoryview) -> Contents:
    """What :func:`write` wrote, checked throughout (else :class:`pyad.errors.FormatError`)."""
    view = memoryview(data).cast("B")
    if len(view) < _HEAD.size:
        raise errors.FormatError(f"truncated: {len(view)} bytes, a saved Function has more")
    magic, version, crc = _HEAD.unpack(view[: _HEAD.size])
    if magic != MAGIC:
        raise errors.FormatError(f"not a saved pyad Function (magic {bytes(magic)!r})")
    if version != VERSION:
        raise errors.FormatError(
            f"container version {version}; this pyad ({__version__}) reads version {VERSION}"
        )
    body = view[_HEAD.size :]
    if zlib.crc32(body) != crc:
        raise errors.FormatError("CRC-32 mismatch: the data is corrupted or truncated")
    r = _Reader(body)
    size = r.u32("the header's length")
    if size > _MAX_META:
        raise errors.FormatError(f"a header of {size} bytes is implausible")
    try:
        meta = _check_meta(json.loads(bytes(r.take(size, "the header")).decode("ascii")))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, errors.FormatError):
            raise
        raise errors.FormatError(f"the header is not valid JSON: {exc}") from None
    ntraces = r.u32("the trace count")
    if ntraces != len(meta["traces"]):
        raise errors.FormatError(
            f"{ntraces} programs for the {len(meta['traces'])} traces the header describes"
        )
    programs = []
    for t, trace in enumerate(meta["traces"]):
        blob = r.take(r.u64(f"trace {t}'s length"), f"trace {t}'s program")
        prog = Program.restore(
            _native.program_load(bytes(blob), f"trace {t}"),
            meta["scalar"],
            [g["where"] for g in trace["guards"]],
            [g["cmp"] for g in trace["guards"]],
            [g["held"] for g in trace["guards"]],
        )
        got = (prog.n_inputs, prog.n_outputs, prog.info["guards"])
        want = (meta["n_inputs"], meta["n_outputs"], len(trace["guards"]))
        if got != want:
            raise errors.FormatError(
                f"trace {t} has {got[0]} inputs, {got[1]} outputs and {got[2]} guards; the "
                f"header says {want[0]}, {want[1]} and {want[2]}"
            )
        programs.append(prog)
    if r.at != len(body):
        raise errors.FormatError(f"{len(body) - r.at} bytes after the last trace")
    return Contents(programs, meta["strict"], meta["name"])
