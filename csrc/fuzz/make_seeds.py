"""Write the seed corpus of fuzz_api.c (csrc/fuzz/corpus/api): a few small programs of API
calls in the harness's encoding, so the fuzzer starts from inputs that record, sweep, compile
and replay. Run from anywhere: python3 csrc/fuzz/make_seeds.py"""

from pathlib import Path

OUT = Path(__file__).resolve().parent / "corpus" / "api"
# op names in code order, from the rows of csrc/ops.def
OPS = [
    line.split(",")[1].strip()
    for line in (OUT.parents[2] / "ops.def").read_text().splitlines()
    if line.startswith("PYAD_OP(")
]
# indices into the harness's table of awkward doubles
NUM: dict[object, int] = {
    0.0: 0,
    "-0.0": 1,
    1.0: 2,
    -1.0: 3,
    2.0: 4,
    0.5: 5,
    -2.5: 6,
    3.0: 7,
    "nan": 16,
    "inf": 17,
}


class Seed:
    """Bytes of one input, and the handles the harness will have remembered."""

    def __init__(self) -> None:
        self.b = bytearray()
        self.handles = 0

    def num(self, v: object) -> None:
        self.b.append(NUM[v])

    def h(self, k: int) -> None:
        """The k-th handle remembered (0 = first); valid while fewer than 64 are held."""
        self.b.append(k)

    def leaf(self, v: object, tape: int = 0) -> int:
        self.b += bytes([0, tape])
        self.num(v)
        self.handles += 1
        return self.handles - 1

    def vv(self, op: str, a: int, b: int, tape: int = 0) -> int:
        self.b += bytes([2, tape, OPS.index(op)])
        self.h(a)
        self.h(b)
        self.num(0.0)
        self.num(0.0)
        self.handles += 1
        return self.handles - 1

    def v(self, op: str, a: int, tape: int = 0) -> int:
        self.b += bytes([1, tape, OPS.index(op)])
        self.h(a)
        self.h(a)
        self.num(0.0)
        self.num(0.0)
        self.handles += 1
        return self.handles - 1

    def nary(self, kind: int, hs: list[int], tape: int = 0, tail: bytes = b"\x01") -> None:
        """kind 0 sum (tail: 1) or another op (tail: 0, op), 1 dot (hs = w then x, no tail),
        2 primitive (tail: value, partials), 3 softmax (tail: 1)."""
        n = len(hs) // 2 if kind == 1 else len(hs)
        self.b += bytes([6 + kind, tape, n, 0x05])
        for k in hs:
            self.h(k)
            self.num(1.0)
        self.b += b"" if kind == 1 else tail
        self.handles += len(hs) if kind == 3 else 1

    def bulk(self, n300: int, mode: int, tail: bytes = b"", tape: int = 0) -> None:
        """n300 * 300 leaves (mode 1 | ...: tanh chain; 2: drop segments as they fill; 8:
        align, tail k: fill the segment, then the next but for k records; 0x20: release, tail pick:
        the pins of all but the segments of the picked recent handles, then leaves until the
        tape collects; 0x40 with it: compile the picked ones). Aligned and released bulks
        remember only their last record, released ones then the picked handles."""
        self.b += bytes([13, tape, n300, mode, NUM[1.0]]) + tail
        if mode & 0x28:
            self.handles += 1 + (bin(tail[-1]).count("1") if mode & 0x20 else 0)
        else:
            self.handles += 300 * n300

    def arrays(
        self,
        kind: int,
        mode: int,
        n: int,
        count: int,
        entries: int,
        tail: bytes = b"",
        v: object = 1.0,
    ) -> None:
        """An array push (kind 0 leaves, 1 map (tail: op), 2 reduce (tail: 1 sum, or 0 1
        logsumexp), 3 dots, 4 get_values, 5 matvec (a matrix of n x count constants times the
        first count handles)) of n records (groups of count), its `entries` operands
        the handles remembered last (mode 1; 2, 4, 8, 16: ha, hb, ca, cb NULL) and constants v.
        """
        self.b += bytes([0xCD, 0, kind, mode, n, count, 0x05])
        for _ in range(entries):
            self.b.append(0)
            self.num(v)
        self.b += tail
        self.handles += n if kind != 4 else 0

    def backward(self, k: int, tape: int = 0) -> None:
        self.b += bytes([12, tape])
        self.h(k)
        self.num(1.0)
        self.b.append(1)

    def program(
        self,
        ins: list[int],
        outs: list[int],
        guards: list[tuple[int, int, int]],
        slot: int = 0,
        tape: int = 0,
    ) -> None:
        shape = next(s for s in range(256) if s % 9 == len(ins) and (s >> 4) % 5 == len(outs))
        self.b += bytes([14, tape, slot, shape, len(guards)])
        for k in ins:
            self.h(k)
        for k in outs:
            self.h(k)
            self.num(0.0)
        self.b += bytes([0, 1])  # no NULL arrays; guards that held
        for lhs, rhs, cmp in guards:
            self.h(lhs)
            self.num(0.0)
            self.h(rhs)
            self.num(0.0)
            self.b.append(cmp)

    def run(self, xs: list[object], slot: int = 0) -> None:
        self.b += bytes([15, slot, 1, 1, 0])
        for x in xs:
            self.num(x)
        self.num(1.0)

    def hvp(self, xs: list[object], slot: int = 0) -> None:
        self.b += bytes([0x8F, slot, 1, 0])
        for x in xs:
            self.num(x)
        for k in range(len(xs)):
            self.num(1.0 if k == 0 else 0.0)


def seeds() -> dict[str, bytes]:
    out = {}
    s = Seed()  # the README example: log(x) + x*y - sin(y)
    x, y = s.leaf(2.0), s.leaf(3.0)
    f = s.vv("sub", s.vv("add", s.v("log", x), s.vv("mul", x, y)), s.v("sin", y))
    s.backward(f)
    s.program([x, y], [f], [(x, y, 0)])
    s.run([2.0, 3.0])
    s.hvp([2.0, 0.5])
    out["example"] = bytes(s.b)

    s = Seed()  # n-ary ops, a primitive, a program over them
    a, b, c = s.leaf(1.0), s.leaf(-2.5), s.leaf(0.5)
    s.nary(0, [a, b, c])  # sum
    s.nary(1, [a, b, c, a])  # dot of (a, b) with (c, a)
    s.nary(0, [a, c], tail=b"\x00" + bytes([OPS.index("logsumexp")]))
    s.nary(3, [a, b, c])  # softmax: three records
    soft = s.handles - 1
    s.nary(2, [a, b], tail=bytes([NUM[3.0], 1]))  # primitive
    s.backward(soft)
    s.program([a, b, c], [soft, soft - 3], [])
    s.run([1.0, 2.0, 3.0])
    out["nary"] = bytes(s.b)

    s = Seed()  # beyond one segment, stats, pins, reset
    s.b += bytes([13, 0, 4, 0, NUM[0.5]])  # 1200 leaves
    s.b += bytes([13, 0, 2, 1, NUM[0.5], 0])  # a chain of 600 tanh
    s.b += bytes([10, 0, 0, 7, 1])  # stats
    s.b += bytes([11, 0, 4, 10])  # unpin
    s.b += bytes([12, 0, 20, NUM[1.0], 0])  # backward
    s.b += bytes([11, 0, 0])  # reset: every handle goes stale
    s.b += bytes([12, 0, 20, NUM[1.0], 0])
    out["segments"] = bytes(s.b)

    s = Seed()  # segments released as they fill: collected, reused, old handles renamed
    x = s.leaf(2.0)
    for _ in range(4):
        s.b += bytes([13, 0, 4, 2, NUM[0.5]])  # 1200 leaves, unpinning full segments
    s.b += bytes([12, 0, x, NUM[1.0], 1])
    s.b += bytes([10, 0, 0, 7, 1])  # stats
    out["collect"] = bytes(s.b)

    s = Seed()  # the frontend compiling after segment reuse, in the middle of a softmax
    x0, x1, x2 = s.leaf(0.5), s.leaf(-2.5), s.leaf(3.0)
    s.bulk(0, 0x08, bytes([2]))  # fill the first segment, and the second but for two records
    s.nary(3, [x0, x1, x2, x0])  # outputs 0 and 1 in the second segment, 2 and 3 in the third
    kept = s.handles - 1
    s.bulk(0, 0x60, bytes([1]))  # only output 3 stays alive; churn, collect, compile it
    s.program([x0, x1, x2], [kept], [])
    s.run([1.0, 2.0, 3.0])
    s.backward(kept)
    out["softmax-reuse"] = bytes(s.b)

    s = Seed()  # compiling a record that lost its operand: its segment kept for another's sake
    a = s.leaf(0.5)
    s.bulk(0, 0x08, bytes([5]))  # on into the second segment
    lost = s.v("tanh", a)  # in the second segment, of a leaf in the first
    b = s.leaf(2.0)
    s.bulk(0, 0x08, bytes([5]))
    s.v("exp", b)  # keeps b, so the second segment; nothing keeps the first
    s.bulk(0, 0x20, bytes([1]))  # only the newest (exp) alive: the first segment is reused
    s.program([], [lost], [])  # refused (STALE); the old builder read past its arrays
    out["compile-lost-operand"] = bytes(s.b)

    s = Seed()  # allocation failures in the middle of recording and compiling
    x, y = s.leaf(2.0), s.leaf(3.0)
    s.b += bytes([11, 0, 7, 3])  # the 2nd allocation from now fails
    s.nary(3, [x, y])
    s.nary(0, [x, y])
    s.b += bytes([11, 0, 7, 2])
    f = s.vv("mul", x, y)
    s.program([x, y], [f], [])
    s.b += bytes([11, 0, 7, 2])
    s.backward(f)
    out["alloc"] = bytes(s.b)

    s = Seed()  # eval on plain numbers, entry points across both tapes, debug mode
    for op in ("pow", "atan2", "log", "softmax"):
        s.b += bytes([0x8D, OPS.index(op), NUM[2.0], NUM[-0.0], 3, NUM[1.0], NUM[2.0], NUM[3.0]])
    x, y = s.leaf(2.0, tape=1), s.leaf(0.5, tape=0)
    s.b += bytes([5, 1, 3, x, y, NUM[1.0]])  # a binary entry point on operands of two tapes
    s.b += bytes([11, 1, 5, 1])  # debug on
    s.b += bytes([5, 0, 3, x, x, NUM["inf"]])  # a unary entry point
    s.b += bytes([11, 1, 1])  # free tape 1 and make a new one
    s.b += bytes([5, 0, 3, x, x, NUM[1.0]])  # x is now stale
    out["eval"] = bytes(s.b)

    s = Seed()  # array pushes of every kind (csrc/bulk.c), a refused element, a sweep
    s.leaf(2.0), s.leaf(-2.5), s.leaf(0.5)
    s.arrays(0, 0x00, 6, 0, 6)  # six leaves of 1.0
    mul, exp, log = (bytes([OPS.index(op)]) for op in ("mul", "exp", "log"))
    s.arrays(1, 0x01, 5, 0, 10, mul)  # x * y, records both
    s.arrays(1, 0x15, 4, 0, 8, exp)  # exp(x)
    s.arrays(1, 0x13, 4, 0, 8, bytes([OPS.index("div")]), 2.0)  # 2 / x
    sub = bytes([OPS.index("sub")])
    s.arrays(1, 0x13, 2, 0, 4, sub, -1.0)  # -1 - x: negative
    s.arrays(1, 0x15, 2, 0, 4, log)  # log of them: DOMAIN at element 0
    s.handles -= 2  # (refused: remembered nothing)
    s.arrays(2, 0x01, 3, 3, 9, b"\x01")  # three sums of three
    s.arrays(2, 0x01, 2, 2, 4, b"\x00\x01")  # two logsumexps of two
    s.arrays(3, 0x01, 2, 2, 8)  # two dots of two pairs
    s.arrays(4, 0x01, 4, 0, 4)  # get_values
    s.arrays(5, 0x01, 3, 2, 6, v=0.5)  # a matvec: three rows of two
    s.backward(s.handles - 1)
    s.bulk(0, 0x08, bytes([5]))  # leaves to 5 records short of a segment's end
    s.arrays(1, 0x15, 223, 0, 1100, exp)  # 550 exps of the newest records: past that end
    s.bulk(0, 0x08, bytes([5]))  # again 5 records short of a segment's end
    s.arrays(5, 0x01, 12, 3, 36, v=-1.0)  # a matvec of 12 rows across it
    out["arrays"] = bytes(s.b)

    s = Seed()  # a borrowed matrix, changed in place and back: the sweep refuses, then works
    s.leaf(2.0), s.leaf(-2.5)
    s.arrays(5, 0x11, 3, 2, 6, v=0.5)  # a matvec of three rows of two, the matrix lent
    top = s.handles - 1
    s.backward(top)
    flip = bytes([0x4D, 0]) + (4).to_bytes(8, "big") + bytes([62])  # element 4's bit 62
    s.b += flip
    s.backward(top)  # CHANGED: the grads stay as they were
    s.program([0, 1], [top], [])  # CHANGED too
    s.b += flip  # back as it was
    s.backward(top)
    s.program([0, 1], [top], [])
    s.b += bytes([11, 0, 0])  # reset tape 0: its borrowed matrix is released
    s.b += bytes([11, 0, 6, 0, 3])  # pyad_tape_released: token 1, once
    out["borrowed"] = bytes(s.b)
    return out


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (OUT / name).write_bytes(data)
