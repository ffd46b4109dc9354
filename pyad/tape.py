"""Tapes: the Python handle of a C tape, the active tape of each thread, and the segment pins
that keep a tape's memory bounded without any call from the user.

Every Var holds a reference to the segment object of the records around it. When the last
Var of a segment is gone, the segment object's ``__del__`` queues its pin for release, and the
tape releases queued pins at its next segment change (or reset, len, nbytes): the C tape then
reuses segments that no pinned or needed record refers to. One ``__del__`` per segment of 1024
records, none per Var. ``__del__`` never calls C itself: it may run in another thread, or at
interpreter exit after the C tape is gone.

Threads: several threads may use one tape at once. Each C call is atomic (under the GIL, or
the tape's lock where there is none: see ``pyad._native``), but the Python between two calls
is not, so the frontend never assumes that the tape stayed as it was since its previous call.
A push reads the tape's segment object ``Tape._s`` before the call and keeps it for its result
only when that is sure to be the result's segment: the one-record pushes of the hot path, when
the call returned a handle and ``Tape._s`` is still the same object (see ``_install`` for why),
the others when the handle lies in that segment (which the object pins, so the record is safe).
Otherwise (var._slow) the push takes its pin from the C call that made the record
(``pyad_tape_opened``), or pushes again under a pin it took first (``Tape._pin_current``).
Results come back in buffers of the caller's own, and messages are the calling thread's.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from pyad import _native, errors
from pyad._native import CHUNK_RECORDS, OP_NAMES, new_tape

_get_ident = threading.get_ident
# Tokens of borrowed matrices (Tape._borrow): unique in the process, so never reused while a
# tape may still report one (next() on a count is atomic under the GIL and in free-threaded
# builds alike).
_tokens = itertools.count(1)

# Handles share their high bits (the tape's tag) and differ in the slot below them, so
# h >> CHUNK_SHIFT names h's segment of h's tape generation.
CHUNK_SHIFT = (CHUNK_RECORDS - 1).bit_length()
_CHUNK_MASK = CHUNK_RECORDS - 1  # a handle's record index within its segment


class _Segment:
    """One pin on one segment of a tape, shared by the Vars recorded in that segment.

    ``_h`` is a handle in the segment (the one the pin was taken with), ``_c`` the segment's
    key: a handle ``h`` lies in this segment exactly when ``h >> CHUNK_SHIFT == _c``. While
    the object lives the segment is pinned, so it cannot be reused for other records."""

    __slots__ = ("_c", "_h", "_pending")

    def __init__(self, h: int, pending: list[int]) -> None:
        self._h = h
        self._c = h >> CHUNK_SHIFT
        self._pending = pending

    def __del__(self) -> None:
        self._pending.append(self._h)


@dataclass(frozen=True)
class TapeSummary:
    """What :meth:`Tape.summary` reports."""

    records_per_op: dict[str, int]
    records: int
    nbytes: int
    depth: int

    def __str__(self) -> str:
        width = max((len(name) for name in self.records_per_op), default=4)
        lines = [
            f"{self.records:,} records, {self.nbytes:,} bytes "
            f"({self.nbytes / max(self.records, 1):.1f} per record), depth {self.depth:,}"
        ]
        for name, count in sorted(self.records_per_op.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name:<{width}}  {count:>12,}")
        return "\n".join(lines)


@contextlib.contextmanager
def detect_anomaly(tape: Tape | None = None) -> Iterator[Tape]:
    """Debug mode on ``tape`` (the active tape by default) inside a ``with`` block: the first
    operation producing a NaN or infinite value or partial raises NonFiniteError, naming the
    op and the line that recorded it."""
    tape = tape if tape is not None else Tape.current()
    before = tape.debug
    tape.debug = True
    try:
        yield tape
    finally:
        tape.debug = before


@functools.cache
def _empty_tape_bytes() -> int:
    """What a new tape holds (its first segment): the least cap a tape can meet."""
    return _native.tape_nbytes(new_tape())


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.default: Tape | None = None
        self.stack: list[Tape] = []


_state = _ThreadState()


class Tape:
    """A Wengert list in C: every operation on Vars appends one record to the active tape.

    Each thread has a default tape; ``with pyad.Tape() as t:`` records inside ``t`` instead.
    Any thread may use any tape, and several threads may record on one tape and sweep it at
    once (each operation is atomic). Memory is reclaimed as Vars die, so a training loop
    needs no tape calls; ``reset()`` drops every record at once (Vars recorded before it raise
    :class:`pyad.errors.StaleVarError` when used).

    ``max_bytes`` caps the memory the tape holds (:attr:`nbytes`): an operation that would
    take it past the cap raises :class:`pyad.errors.TapeMemoryError` (a MemoryError), and
    records nothing, like any operation that runs out of memory: the tape and its Vars stay
    as they were, and recording can go on after ``reset()`` or once the cap is raised.
    ``None`` (the default) sets no cap beyond the machine's memory.
    """

    __slots__ = (
        "__weakref__",
        "_borrowed",
        "_debug",
        "_install_lock",
        "_installer",
        "_max_bytes",
        "_p",
        "_pending",
        "_s",
        "_trace",
    )

    def __init__(self, debug: bool = False, max_bytes: int | None = None) -> None:
        self._max_bytes: int | None = None
        self._p = new_tape()
        self._pending: list[int] = []
        # The matrices that records read in place (X in X @ w): kept alive here, by token,
        # until the C tape says no record reads them any more (_drop_released).
        self._borrowed: dict[int, Any] = {}
        self._install_lock = threading.Lock()
        self._installer: int | None = None
        # The first segment, opened by new_tape; installing it turns adopting on in C.
        self._s = self._new_segment(release=False)
        self._debug = False
        self.debug = debug
        self.max_bytes = max_bytes
        # While pyad.compile traces a function on this tape: what records its comparisons
        # (guards) and refuses reads of values; None otherwise.
        self._trace: Any = None

    # -- the active tape ---------------------------------------------------------------
    @staticmethod
    def current() -> Tape:
        """The tape new leaves are recorded on in this thread."""
        stack = _state.stack
        if stack:
            return stack[-1]
        tape = _state.default
        if tape is None:
            tape = _state.default = Tape()
        return tape

    def __enter__(self) -> Tape:
        _state.stack.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = _state.stack
        if stack and stack[-1] is self:
            stack.pop()

    @property
    def debug(self) -> bool:
        """Debug mode: when on, the first operation whose value or partial is NaN or
        infinite raises :class:`pyad.errors.NonFiniteError` naming the op and your source
        line, and records nothing. Off by default; when off it costs one branch in C."""
        return self._debug

    @debug.setter
    def debug(self, on: bool) -> None:
        _native.tape_set_debug(self._p, bool(on))
        self._debug = bool(on)

    @property
    def max_bytes(self) -> int | None:
        """The cap on :attr:`nbytes` (None: no cap), at least what an empty tape holds.
        Growing past it raises :class:`pyad.errors.TapeMemoryError` and leaves the tape
        unchanged; setting a cap below what the tape holds already only stops further
        growth."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int | None) -> None:
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"max_bytes must be an int or None, not {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"max_bytes must be a positive number of bytes, not {value}")
            # A cap below what a new tape holds could never be met.
            least = _empty_tape_bytes()
            if value < least:
                raise ValueError(
                    f"max_bytes must be at least {least} (what an empty tape holds: its "
                    f"first segment of {CHUNK_RECORDS} records), not {value}"
                )
        _native.tape_set_max_bytes(self._p, value or 0)
        self._max_bytes = value

    # -- whole-tape operations -------------------------------------------------------------
    def reset(self) -> None:
        """Drop every record. Vars recorded before raise StaleVarError when used again."""
        _native.tape_reset(self._p)
        self._drop_released()
        # The reset's first segment; queued pins of the old generation are released as no-ops
        # (another thread may be queueing pins of the new one meanwhile: none is dropped).
        self._new_segment()

    def __len__(self) -> int:
        self._release_pins()
        return _native.tape_len(self._p)

    @property
    def nbytes(self) -> int:
        """Bytes of memory the C tape holds: record buffers, operand lists and scratch."""
        self._release_pins()
        return _native.tape_nbytes(self._p)

    def summary(self) -> TapeSummary:
        """Records per op, memory and depth (the longest chain from an input): for a tape too
        large to draw with ``pyad.to_dot``."""
        self._release_pins()
        counts, depth = _native.tape_stats(self._p)
        per_op = {name: counts[code] for code, name in enumerate(OP_NAMES) if counts[code]}
        return TapeSummary(per_op, len(self), self.nbytes, depth)

    def __repr__(self) -> str:
        try:
            return f"<pyad.Tape: {len(self)} records, {self.nbytes} bytes>"
        except errors.PyadError as exc:
            return f"<pyad.Tape: {type(exc).__name__}>"

    # -- for the frontend ------------------------------------------------------------------
    def _pin(self, h: int) -> _Segment:
        """A new pin on the segment of record ``h`` (for Vars made from handles of records that
        a pinned record needs, so that ``h`` cannot be reused meanwhile)."""
        _native.tape_pin(self._p, h)
        return _Segment(h, self._pending)

    def _new_segment(self, release: bool = True) -> _Segment:
        """After a push returned PYAD_SEGMENT (or a reset): the segment that this thread's call
        opened, with the pin the call took; ``_h`` is its first record, the record of a
        one-record push. It becomes the tape's segment, which a push compares its result with.
        (Another thread may set an older one meanwhile: pushes then find their records
        outside it, and take the slow path that sets a current one.)"""
        segment = _Segment(_native.tape_opened(self._p), self._pending)
        self._install(segment)
        if release:
            self._release_pins()
        return segment

    def _pin_current(self) -> _Segment:
        """A new pin on the current segment, taken in one C call: a push made after it whose
        record lies in this segment is safe, whatever other threads did in between."""
        segment = _Segment(_native.tape_pin_current(self._p), self._pending)
        self._install(segment)
        return segment

    def _install(self, segment: _Segment) -> None:
        """Make ``segment`` the tape's segment if it is the current one: ``_s`` for the pushes
        to compare with, and adopted in C (pyad_tape_adopt), so that pushes into it return
        handles; pushes into a segment not adopted return SEGMENT with a pin of their own.

        Why a push whose call returned a handle, with ``_s`` the same object before and after
        the call, may keep that object: the call recorded in the adopted segment A. ``_s`` is
        only written here, under the lock, with a segment that was the current one when its
        section began, before A is adopted; and no segment other than A is current between
        A's adoption and the call (a new one would have left A unadopted). So every write
        between A's and the call is of a segment of A, and the object the push read, the same
        before and after the call, was written at or after A's write.

        A nested call (a finalizer or signal handler recording on this tape during this
        thread's own section) does nothing: its push holds a pin of its own already, and its
        section inside this one would break the order that the argument above rests on."""
        me = _get_ident()
        if self._installer == me:
            return
        with self._install_lock:
            self._installer = me
            try:
                if _native.tape_segment(self._p) >> CHUNK_SHIFT == segment._c:
                    self._s = segment
                    _native.tape_adopt(self._p, segment._h)
            finally:
                self._installer = None

    def _segments(
        self, handles: list[int], before: _Segment, opened: bool
    ) -> list[_Segment] | None:
        """The segment of each record of a multi-record push (a softmax): ``before`` is the
        tape's segment read before the push, ``opened`` whether the push returned
        PYAD_SEGMENT. Such a push fills the current segment, then opens as many new ones as
        it needs, in order, each pinned once for the caller; a record at the start of a
        segment other than ``before``'s starts one of those, and that pin is taken over here.
        None if the first record lies in a segment this thread holds no pin on (another
        thread changed segments between reading ``before`` and the push): the caller pushes
        again under :meth:`_pin_current` (the opened segments' pins are released with the
        objects made for them here)."""
        segments = []
        segment: _Segment | None = before
        pinned = True
        for h in handles:
            if segment is None or h >> CHUNK_SHIFT != segment._c:
                if h & _CHUNK_MASK == 0:  # the first record of a segment this push opened
                    segment = _Segment(h, self._pending)
                else:  # only the first record can lie in a segment opened by another thread
                    pinned, segment = False, None
            if segment is not None:
                segments.append(segment)
        if opened and segment is not None and segment is not before:
            self._install(segment)
            self._release_pins()
        return segments if pinned else None

    def _run_segments(
        self, handles: npt.NDArray[np.int64], before: _Segment, opened: bool
    ) -> dict[int, _Segment] | None:
        """:meth:`_segments` for the records of one bulk push (pyad.array's), keyed by segment
        (``h >> CHUNK_SHIFT``): such a push, too, fills the current segment and then opens new
        ones in order, so only the first record of each run of one segment is looked at. None
        as there: push again under :meth:`_pin_current`."""
        segments: dict[int, _Segment] = {}
        if handles.size == 0:
            return segments
        # The push filled the segment of its first record to its end, then each segment it
        # opened from its start (pyad__prepare, pyad__next_slot): the runs start at the first
        # record and every CHUNK_RECORDS after the first run, so none needs looking for.
        first = int(handles[0])
        starts = handles[CHUNK_RECORDS - (first & _CHUNK_MASK) :: CHUNK_RECORDS]
        segment = before
        pinned = True
        for h in [first, *starts.tolist()]:
            if h >> CHUNK_SHIFT == before._c:
                segment = before
            elif h & _CHUNK_MASK == 0:  # a segment this push opened, pinned for this thread
                segment = _Segment(h, self._pending)
            elif h == first:  # only the first run can lie in a segment another thread opened
                pinned = False
                continue
            else:  # pushing again would meet the same: a bug, raised rather than looped on
                raise errors.InternalError("a bulk push's records left a segment mid-way")
            segments[segment._c] = segment
        if opened and segment is not before:
            self._install(segment)
            self._release_pins()
        return segments if pinned else None

    def _borrow(self, matrix: Any) -> int:
        """Keep ``matrix`` alive for a push that will read it in place
        (pyad_push_matvec_borrowed): the token to push with. Taken before the push, so that no
        release of the token can come before it; a push that fails gives it back
        (:meth:`_unborrow`)."""
        token = next(_tokens)
        self._borrowed[token] = matrix
        return token

    def _unborrow(self, token: int) -> None:
        self._borrowed.pop(token, None)

    def _drop_released(self) -> None:
        """Let go of the matrices no record reads any more."""
        if self._borrowed:
            for token in _native.tape_released(self._p):
                self._borrowed.pop(token, None)

    def _release_pins(self) -> None:
        """Release the pins queued by dead segment objects. Several threads may release at
        once: each queued pin is taken by one."""
        pending, unpin, p = self._pending, _native.tape_unpin, self._p
        while True:
            try:
                h = pending.pop()
            except IndexError:  # empty, perhaps emptied by another thread since the test
                break
            # A failure other than a lack of memory raises (InternalError): the pins are out
            # of step with the segments, a bug in pyad, raised rather than hidden. That pin is
            # not queued again: it would fail again; the other queued pins wait for the next
            # release.
            if not unpin(p, h):
                # The release's bookkeeping found no memory: the segment stays pinned, and
                # the next release tries again. Not an error of the caller's operation.
                pending.append(h)
                break
        self._drop_released()
