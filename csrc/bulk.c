/*
 * bulk.c - arrays of records in one call (pyad.array): n leaves, a unary or binary op over n
 * elements, and n sums, logsumexps or dots over consecutive groups of operands.
 *
 * A call checks every operand and every value and partial (where a refused operand, an
 * overflow or debug mode's refusal shows), and only then makes room for all its records at
 * once (pyad__prepare, the one step that can fail for lack of memory or of max_bytes) and
 * writes them segment by segment (pyad__next_slot, as pyad_push_softmax does): a call that
 * fails has changed nothing. Its records are those that one-record pushes of the
 * same operands make, bit for bit: the map's values and partials come from the rows of
 * ops.def expanded as record.c expands them and are laid out as record.c's `record` lays them
 * out; the reductions go through nary.c's own steps. So the sweep, collection, compile,
 * replay and saved programs see no difference.
 */
#include <stdlib.h>

#include "alloc.h"
#include "internal.h"
#include "opfuncs.h"

/* More records than a tape holds can never be recorded: refused before n sizes anything. */
#define MAX_RECORDS ((int64_t)PYAD_MAX_CHUNKS * PYAD_CHUNK)
#define SLOT(h) ((uint32_t)(h) & PYAD_SLOT_MASK)

static int check_size(pyad_tape *t, int64_t n, const int64_t *out)
{
    if (n < 0 || n > MAX_RECORDS)
        return pyad__fail(t, PYAD_MISUSE, "bad record count %lld (a tape holds at most %lld)",
                          (long long)n, (long long)MAX_RECORDS);
    if (n > 0 && out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    return PYAD_OK;
}

/* The failure of element k, after the message a one-record push gives for it. */
static int at_element(pyad_tape *t, int st, int64_t k, int64_t *where)
{
    if (where != NULL)
        *where = k;
    return pyad__fail_more(t, st, " at element %lld", (long long)k);
}

/* ---- one record per element --------------------------------------------------------- */

/* A call's elements: the operands of a map (or a leaf's values, ca) and where the handles
   go. */
typedef struct elements {
    pyad_tape *t;
    int form;
    const int64_t *ha, *hb;
    const double *ca, *cb;
    int64_t *out;
} elements;

/* Writes elements k0..k1 as the records from slot `first` on (one segment's share); returns
   k1 (the map's rows may refuse an operand in the code, never here: the first pass did). */
typedef int64_t (*write_fn)(const elements *e, int64_t k0, int64_t k1, uint32_t first);

/* Writes n records from the current segment on, a segment's share at a time (the kind and the
   zero grads of a share at once, the rest by `write`); PYAD_SEGMENT if it opened one. */
static int write_records(const elements *e, unsigned kind, int64_t n, write_fn write)
{
    pyad_tape *t = e->t;
    int opened = 0;
    for (int64_t k = 0; k < n;) {
        const uint32_t first = pyad__next_slot(t, &opened);
        const uint32_t room = PYAD_CHUNK - (first & PYAD_CHUNK_MASK);
        const uint32_t m = n - k < room ? (uint32_t)(n - k) : room;
        memset(t->kind + first, (int)kind, m);
        memset(t->grad + first, 0, m * sizeof *t->grad); /* 0.0 is all zero bits */
        (void)write(e, k, k + m, first);
        pyad__commit(t, m, 0);
        k += m;
    }
    return opened ? PYAD_SEGMENT : PYAD_OK;
}

static int64_t write_leaves(const elements *e, int64_t k0, int64_t k1, uint32_t first)
{
    pyad_tape *t = e->t;
    const uint64_t tag = t->tag << PYAD_SLOT_BITS;
    memcpy(t->val + first, e->ca + k0, (size_t)(k1 - k0) * sizeof *t->val);
    for (int64_t k = k0; k < k1; k++) {
        const uint32_t s = first + (uint32_t)(k - k0);
        t->rec[s] = (pyad_rec){s, s, 0.0, 0.0};
        e->out[k] = (int64_t)(tag | s);
    }
    return k1;
}

int pyad_push_leaves(pyad_tape *t, int64_t n, const double *values, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK || (st = check_size(t, n, out)) != PYAD_OK || n == 0)
        return st;
    if (values == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL values");
    if ((st = pyad__prepare(t, (uint32_t)n, 0, 0)) != PYAD_OK)
        return st;
    const elements e = {t, PYAD_FORM_PLAIN, NULL, NULL, values, NULL, out};
    return write_records(&e, PYAD_OP_LEAF, n, write_leaves);
}

/* ---- a unary or binary op over n elements -------------------------------------------- */

/* A map goes over its elements twice, with no scratch: a 10^7-element array would need
   hundreds of megabytes of it, and the memory traffic of writing and reading it back costs
   more than the arithmetic of most ops (measured: make -C csrc bench). The first pass
   resolves the handles and evaluates each row's MATH for its checks only: the compiler drops
   the arithmetic that no check reads (libm is pure with -fno-math-errno), so for an op that
   cannot fail it is a pass over the handles. The second, once pyad__prepare has made room,
   evaluates MATH again, the same expressions on the same operands, and writes the records. */

/* The first element that failed: its status, and what the message names (the operands, or
   debug mode's value and partials); STALE has its message already. */
typedef struct map_fail {
    int st;
    double x[3];
} map_fail;

static int64_t failed(map_fail *f, int st, double x0, double x1, double x2, int64_t k)
{
    *f = (map_fail){st, {x0, x1, x2}};
    return k;
}

/* The first pass over elements 0..n: n, or the first element that failed. RESOLVE checks the
   element's handles (as record.c: a, then b) into sa and sb; a and b (the names a row's MATH
   reads) come from A and B; with DEBUG, debug mode's check of what record.c's `record`
   checks: the value, the partial kept in rec.da (P) and the one rec.db stands for (PB, 0
   where rec.db keeps a constant). */
#define PYAD_REFUSED(status) return failed(f, status, a, b, 0.0, k)
#define MAP_CHECK(DEBUG, RESOLVE, A, B, MATH, P, PB)                                               \
    for (int64_t k = 0; k < n; k++) {                                                              \
        uint32_t sa = 0, sb = 0;                                                                   \
        RESOLVE                                                                                    \
        const double a = (A), b = (B);                                                             \
        (void)sa;                                                                                  \
        (void)sb;                                                                                  \
        MATH                                                                                       \
        if ((DEBUG) && !(isfinite(y) && isfinite(P) && isfinite(PB)))                              \
            return failed(f, PYAD_NONFINITE, y, P, PB, k);                                         \
    }                                                                                              \
    return n;
#define STALE_IF(h, s)                                                                             \
    if (PYAD_UNLIKELY(pyad__resolve(t, (h), &(s)) != PYAD_OK))                                     \
        return failed(f, PYAD_STALE, 0.0, 0.0, 0.0, k);

/* The second pass over elements k0..k1, records from slot `first` on, record.c's layout:
   rec.a the operand (RA), rec.b the other or the record itself (RB), rec.da its partial (P),
   rec.db the other partial or the constant (Q). */
#define MAP_WRITE(A, B, MATH, RA, RB, P, Q)                                                        \
    for (int64_t k = k0; k < k1; k++) {                                                            \
        const uint32_t s = first + (uint32_t)(k - k0);                                             \
        const double a = (A), b = (B);                                                             \
        MATH                                                                                       \
        rec[s] = (pyad_rec){RA, RB, P, Q};                                                         \
        val[s] = y;                                                                                \
        out[k] = (int64_t)(tag | s);                                                               \
    }                                                                                              \
    return k1;

#define MAP_LOCALS                                                                                 \
    pyad_tape *t = e->t;                                                                           \
    const int64_t *ha = e->ha, *hb = e->hb;                                                        \
    const double *ca = e->ca, *cb = e->cb;                                                         \
    (void)hb;                                                                                      \
    (void)ca;                                                                                      \
    (void)cb;
#define WRITE_LOCALS                                                                               \
    MAP_LOCALS                                                                                     \
    double *val = t->val;                                                                          \
    pyad_rec *rec = t->rec;                                                                        \
    int64_t *out = e->out;                                                                         \
    const uint64_t tag = t->tag << PYAD_SLOT_BITS;                                                 \
    map_fail unused_, *f = &unused_;                                                               \
    (void)f;

/* Per unary and binary row: check_<name> (the first pass; with debug mode's checks or
   without) and write_<name> (the second), a loop per form (record.c's entry points). */
#define PYAD_MAP_0(NAME, name, MATH)
#define PYAD_MAP_PYAD_NARY(NAME, name, MATH)
#define PYAD_MAP_1(NAME, name, MATH)                                                               \
    static int64_t check_##name(const elements *e, int debug, int64_t n, map_fail *f)              \
    {                                                                                              \
        MAP_LOCALS                                                                                 \
        if (debug) {                                                                               \
            MAP_CHECK(1, STALE_IF(ha[k], sa), t->val[sa], 0.0, MATH, da, 0.0)                      \
        }                                                                                          \
        MAP_CHECK(0, STALE_IF(ha[k], sa), t->val[sa], 0.0, MATH, da, 0.0)                          \
    }                                                                                              \
    static int64_t write_##name(const elements *e, int64_t k0, int64_t k1, uint32_t first)         \
    {                                                                                              \
        WRITE_LOCALS                                                                               \
        MAP_WRITE(val[SLOT(ha[k])], 0.0, MATH, SLOT(ha[k]), s, da, 0.0)                            \
    }
#define PYAD_MAP_2(NAME, name, MATH)                                                               \
    static int64_t check_##name(const elements *e, int debug, int64_t n, map_fail *f)              \
    {                                                                                              \
        MAP_LOCALS                                                                                 \
        const double *v = t->val;                                                                  \
        switch (e->form + 3 * (debug != 0)) {                                                      \
        case PYAD_FORM_PLAIN:                                                                      \
            MAP_CHECK(0, STALE_IF(ha[k], sa) STALE_IF(hb[k], sb), v[sa], v[sb], MATH, da, db)      \
        case PYAD_FORM_VC:                                                                         \
            MAP_CHECK(0, STALE_IF(ha[k], sa), v[sa], cb[k], MATH, da, 0.0)                         \
        case PYAD_FORM_CV:                                                                         \
            MAP_CHECK(0, STALE_IF(hb[k], sb), ca[k], v[sb], MATH, db, 0.0)                         \
        case 3 + PYAD_FORM_PLAIN:                                                                  \
            MAP_CHECK(1, STALE_IF(ha[k], sa) STALE_IF(hb[k], sb), v[sa], v[sb], MATH, da, db)      \
        case 3 + PYAD_FORM_VC:                                                                     \
            MAP_CHECK(1, STALE_IF(ha[k], sa), v[sa], cb[k], MATH, da, 0.0)                         \
        default:                                                                                   \
            MAP_CHECK(1, STALE_IF(hb[k], sb), ca[k], v[sb], MATH, db, 0.0)                         \
        }                                                                                          \
    }                                                                                              \
    static int64_t write_##name(const elements *e, int64_t k0, int64_t k1, uint32_t first)         \
    {                                                                                              \
        WRITE_LOCALS                                                                               \
        if (e->form == PYAD_FORM_PLAIN) {                                                          \
            MAP_WRITE(val[SLOT(ha[k])], val[SLOT(hb[k])], MATH, SLOT(ha[k]), SLOT(hb[k]), da, db)  \
        } else if (e->form == PYAD_FORM_VC) {                                                      \
            MAP_WRITE(val[SLOT(ha[k])], cb[k], MATH, SLOT(ha[k]), s, da, b)                        \
        } else {                                                                                   \
            MAP_WRITE(ca[k], val[SLOT(hb[k])], MATH, SLOT(hb[k]), s, db, a)                        \
        }                                                                                          \
    }
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) PYAD_MAP_##ARITY(NAME, name, MATH)
#include "ops.def"
#undef PYAD_OP
#undef PYAD_REFUSED

typedef int64_t (*check_fn)(const elements *e, int debug, int64_t n, map_fail *f);
#define PYAD_MAP_ENTRY_0(prefix, name) NULL
#define PYAD_MAP_ENTRY_PYAD_NARY(prefix, name) NULL
#define PYAD_MAP_ENTRY_1(prefix, name) prefix##name
#define PYAD_MAP_ENTRY_2(prefix, name) prefix##name
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH)                                                     \
    [PYAD_OP_##NAME] = PYAD_MAP_ENTRY_##ARITY(check_, name),
static const check_fn check_table[PYAD_OP_COUNT] = {
#include "ops.def"
};
#undef PYAD_OP
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH)                                                     \
    [PYAD_OP_##NAME] = PYAD_MAP_ENTRY_##ARITY(write_, name),
static const write_fn write_table[PYAD_OP_COUNT] = {
#include "ops.def"
};
#undef PYAD_OP

/* The form of a map's records from which operand arrays it was given (MISUSE if none). */
static int map_form(pyad_tape *t, int op, const int64_t *ha, const double *ca, const int64_t *hb,
                    const double *cb, int *form)
{
    const char *name = pyad_op_name(op);
    *form = PYAD_FORM_PLAIN;
    if (pyad__arity[op] == 1) {
        if (hb != NULL || cb != NULL)
            return pyad__fail(t, PYAD_MISUSE, "%s is unary: it takes no operand b", name);
        if (ha == NULL)
            return pyad__fail(t, PYAD_MISUSE, "%s of constants: its operands must be records",
                              name);
        return PYAD_OK;
    }
    if ((ha == NULL && ca == NULL) || (hb == NULL && cb == NULL))
        return pyad__fail(t, PYAD_MISUSE, "%s is binary: it needs operands a and b", name);
    if (ha == NULL && hb == NULL)
        return pyad__fail(t, PYAD_MISUSE, "%s of two constants: one operand must be records", name);
    *form = ha == NULL ? PYAD_FORM_CV : hb == NULL ? PYAD_FORM_VC : PYAD_FORM_PLAIN;
    return PYAD_OK;
}

int pyad_push_map(pyad_tape *t, int op, int64_t n, const int64_t *ha, const double *ca,
                  const int64_t *hb, const double *cb, int64_t *out, int64_t *where)
{
    if (where != NULL)
        *where = -1;
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (op < 0 || op >= PYAD_OP_COUNT || check_table[op] == NULL)
        return pyad__fail(t, PYAD_MISUSE, "pyad_push_map records unary and binary ops, not op %d",
                          op);
    int form;
    if ((st = check_size(t, n, out)) != PYAD_OK || n == 0 ||
        (st = map_form(t, op, ha, ca, hb, cb, &form)) != PYAD_OK)
        return st;
    const elements e = {
        t, form, form == PYAD_FORM_CV ? NULL : ha, form == PYAD_FORM_VC ? NULL : hb, ca, cb, out};
    map_fail f;
    const int64_t k = check_table[op](&e, t->debug, n, &f);
    if (k < n) {
        if (f.st == PYAD_NONFINITE)
            pyad__nonfinite(t, op, f.x[0], f.x[1], f.x[2]);
        else if (f.st != PYAD_STALE)
            pyad__math_error(t, f.st, op, f.x[0], f.x[1]);
        return at_element(t, f.st, k, where);
    }
    if ((st = pyad__prepare(t, (uint32_t)n, 0, 0)) != PYAD_OK)
        return st;
    return write_records(&e, (unsigned)op | (unsigned)form << PYAD_OP_BITS, n, write_table[op]);
}

/* ---- n-ary records over groups of operands ------------------------------------------- */

/* Operands j*count .. (j+1)*count - 1 of a list. */
static pyad_operands group(const int64_t *h, const double *c, int64_t j, int64_t count)
{
    return (pyad_operands){h != NULL ? h + j * count : NULL, c != NULL ? c + j * count : NULL, 1};
}

/* Scratch of `per` doubles for each of nout groups, and 3 more per group for the value
   (pyad__reduce_value's). NULL, with the message, when out of memory. */
static double *scratch(pyad_tape *t, int64_t nout, int64_t per)
{
    /* nout <= 2^28 and per <= 2^31 (pyad__check_count): no overflow in 64 bits */
    const uint64_t count = (uint64_t)nout * (uint64_t)(per + 3);
    double *v = count <= SIZE_MAX / sizeof *v ? pyad__malloc((size_t)count * sizeof *v) : NULL;
    if (v == NULL)
        pyad__fail(t, PYAD_NOMEM, "out of memory for %llu operand values",
                   (unsigned long long)count);
    return v;
}

int pyad_push_reduce(pyad_tape *t, int op, int64_t nout, int64_t count, const int64_t *handles,
                     const double *consts, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (op != PYAD_OP_SUM && op != PYAD_OP_LOGSUMEXP)
        return pyad__fail(t, PYAD_MISUSE,
                          "pyad_push_reduce records sum and logsumexp, not op %d (dot: "
                          "pyad_push_dots)",
                          op);
    if ((st = check_size(t, nout, out)) != PYAD_OK ||
        (st = pyad__check_count(t, count, op == PYAD_OP_LOGSUMEXP && nout > 0, "logsumexp")) !=
            PYAD_OK ||
        nout == 0)
        return st;
    if ((st = pyad__check_operands(t, nout * count, group(handles, consts, 0, 0))) != PYAD_OK)
        return st;
    double *v = scratch(t, nout, count);
    if (v == NULL)
        return PYAD_NOMEM;
    double *r = v + nout * count;
    for (int64_t j = 0; j < nout; j++) {
        const pyad_operands l = group(handles, consts, j, count);
        if ((st = pyad__reduce_value(t, op, l, count, v + j * count, r + 3 * j)) != PYAD_OK) {
            free(v);
            return pyad__fail_more(t, st, " at output %lld", (long long)j);
        }
    }
    int opened = 0;
    if ((st = pyad__prepare(t, (uint32_t)nout, (uint32_t)count, 0)) == PYAD_OK) {
        for (int64_t j = 0; j < nout; j++) {
            const uint32_t slot = pyad__next_slot(t, &opened);
            pyad__reduce_put(t, slot, t->chunks[t->cur].side_len, op,
                             group(handles, consts, j, count), v + j * count, count, r + 3 * j);
            pyad__commit(t, 1, (uint32_t)count);
            out[j] = pyad__handle(t, slot);
        }
        st = opened ? PYAD_SEGMENT : PYAD_OK;
    }
    free(v);
    return st;
}

int pyad_push_dots(pyad_tape *t, int64_t nout, int64_t count, const int64_t *hw, const double *cw,
                   const int64_t *hx, const double *cx, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if ((st = check_size(t, nout, out)) != PYAD_OK ||
        (st = pyad__check_count(t, count, 0, "dot")) != PYAD_OK || nout == 0)
        return st;
    if ((st = pyad__check_operands(t, nout * count, group(hw, cw, 0, 0))) != PYAD_OK ||
        (st = pyad__check_operands(t, nout * count, group(hx, cx, 0, 0))) != PYAD_OK)
        return st;
    double *wx = scratch(t, nout, 2 * count);
    if (wx == NULL)
        return PYAD_NOMEM;
    double *y = wx + 2 * nout * count;
    for (int64_t j = 0; j < nout; j++) {
        const pyad_operands w = group(hw, cw, j, count), x = group(hx, cx, j, count);
        if ((st = pyad__dot_value(t, w, x, count, wx + 2 * j * count, y + j)) != PYAD_OK) {
            free(wx);
            return pyad__fail_more(t, st, " at output %lld", (long long)j);
        }
    }
    int opened = 0;
    if ((st = pyad__prepare(t, (uint32_t)nout, 2 * (uint32_t)count, 0)) == PYAD_OK) {
        for (int64_t j = 0; j < nout; j++) {
            const uint32_t slot = pyad__next_slot(t, &opened);
            pyad__dot_put(t, slot, t->chunks[t->cur].side_len, group(hw, cw, j, count),
                          group(hx, cx, j, count), wx + 2 * j * count, count, y[j]);
            pyad__commit(t, 1, 2 * (uint32_t)count);
            out[j] = pyad__handle(t, slot);
        }
        st = opened ? PYAD_SEGMENT : PYAD_OK;
    }
    free(wx);
    return st;
}
