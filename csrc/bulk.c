/*
 * bulk.c - arrays of records in one call (pyad.array): n leaves, a unary or binary op over n
 * elements, and n sums, logsumexps or dots over consecutive groups of operands.
 *
 * A call checks every operand, then computes every value and partial into scratch (where a
 * refused operand, an overflow or debug mode's refusal shows), and only then makes room for
 * all its records at once (pyad__prepare, the one step that can fail for lack of memory or of
 * max_bytes) and writes them segment by segment (pyad__next_slot, as pyad_push_softmax does):
 * a call that fails has changed nothing. Its records are those that one-record pushes of the
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

/* ---- writing records that pyad__prepare made room for -------------------------------- */

/* A call's records, column by column: rec.a is the record of a[k], or the record itself
   where a is NULL (leaves); rec.b that of b[k] or itself; rec.da and rec.db are p[k] and
   q[k], or 0 where NULL (record.c's layout). */
typedef struct columns {
    unsigned kind;
    const double *y;
    const int64_t *a, *b;
    const double *p, *q;
} columns;

/* Writes n records from the current segment on, a segment's share at a time, their handles
   into out; PYAD_SEGMENT if it opened one. The layout's cases are told apart outside the
   loops, which then only copy. */
static int write_records(pyad_tape *t, int64_t n, const columns *c, int64_t *out)
{
    const uint64_t tag = t->tag << PYAD_SLOT_BITS;
    int opened = 0;
    for (int64_t k = 0; k < n;) {
        const uint32_t first = pyad__next_slot(t, &opened);
        const uint32_t room = PYAD_CHUNK - (first & PYAD_CHUNK_MASK);
        const uint32_t m = n - k < room ? (uint32_t)(n - k) : room;
        memset(t->kind + first, (int)c->kind, m);
        memcpy(t->val + first, c->y + k, m * sizeof *t->val);
        memset(t->grad + first, 0, m * sizeof *t->grad); /* 0.0 is all zero bits */
        pyad_rec *rec = t->rec + first;
        int64_t *o = out + k;
        if (c->a == NULL) {
            for (uint32_t i = 0; i < m; i++)
                rec[i] = (pyad_rec){first + i, first + i, 0.0, 0.0};
        } else if (c->b != NULL) {
            const int64_t *a = c->a + k, *b = c->b + k;
            const double *p = c->p + k, *q = c->q + k;
            for (uint32_t i = 0; i < m; i++)
                rec[i] = (pyad_rec){SLOT(a[i]), SLOT(b[i]), p[i], q[i]};
        } else if (c->q != NULL) {
            const int64_t *a = c->a + k;
            const double *p = c->p + k, *q = c->q + k;
            for (uint32_t i = 0; i < m; i++)
                rec[i] = (pyad_rec){SLOT(a[i]), first + i, p[i], q[i]};
        } else {
            const int64_t *a = c->a + k;
            const double *p = c->p + k;
            for (uint32_t i = 0; i < m; i++)
                rec[i] = (pyad_rec){SLOT(a[i]), first + i, p[i], 0.0};
        }
        for (uint32_t i = 0; i < m; i++)
            o[i] = (int64_t)(tag | (first + i));
        pyad__commit(t, m, 0);
        k += m;
    }
    return opened ? PYAD_SEGMENT : PYAD_OK;
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
    const columns c = {PYAD_OP_LEAF, values, NULL, NULL, NULL, NULL};
    return write_records(t, n, &c, out);
}

/* ---- a unary or binary op over n elements -------------------------------------------- */

/* A map's operands, and scratch for each element's value y, the partial its record keeps in
   rec.da (p), and in plain binary records the one in rec.db (q). */
typedef struct map_in {
    const pyad_tape *t;
    const int64_t *ha, *hb;
    const double *ca, *cb;
    double *y, *p, *q;
} map_in;

/* The first element that failed: its status, and what the message names (the operands, or
   debug mode's value and partials). */
typedef struct map_fail {
    int st;
    double x[3];
} map_fail;

static int64_t refused(map_fail *f, int st, double a, double b, int64_t k)
{
    *f = (map_fail){st, {a, b, 0.0}};
    return k;
}

static int64_t nonfinite(map_fail *f, double y, double p, double pb, int64_t k)
{
    *f = (map_fail){PYAD_NONFINITE, {y, p, pb}};
    return k;
}

/* One loop over the elements, a and b (the names a row's MATH reads) from A and B, then
   debug mode's check of what record.c's `record` checks: the value, the partial the record
   keeps in rec.da (P) and the one rec.db stands for (PB, 0 where rec.db holds a constant).
   Returns n, or the first element that failed. */
#define PYAD_REFUSED(status) return refused(f, status, a, b, k)
#define MAP_LOOP(A, B, MATH, P, PB, STORE_Q)                                                       \
    for (int64_t k = 0; k < n; k++) {                                                              \
        const double a = (A), b = (B);                                                             \
        MATH                                                                                       \
        if (PYAD_UNLIKELY(!pyad__finite(t, y, P, PB)))                                             \
            return nonfinite(f, y, P, PB, k);                                                      \
        ys[k] = y;                                                                                 \
        ps[k] = P;                                                                                 \
        STORE_Q;                                                                                   \
    }                                                                                              \
    return n;

#define MAP_LOCALS                                                                                 \
    const pyad_tape *t = m->t;                                                                     \
    const double *val = t->val, *ca = m->ca, *cb = m->cb;                                          \
    const int64_t *ha = m->ha, *hb = m->hb;                                                        \
    double *ys = m->y, *ps = m->p, *qs = m->q;                                                     \
    (void)ca;                                                                                      \
    (void)cb;                                                                                      \
    (void)hb;                                                                                      \
    (void)qs;

/* One function per unary and binary row, a loop per form (record.c's entry points). */
#define PYAD_MAP_0(NAME, name, MATH)
#define PYAD_MAP_PYAD_NARY(NAME, name, MATH)
#define PYAD_MAP_1(NAME, name, MATH)                                                               \
    static int64_t map_##name(const map_in *m, int form, int64_t n, map_fail *f)                   \
    {                                                                                              \
        MAP_LOCALS(void) form;                                                                     \
        MAP_LOOP(val[SLOT(ha[k])], 0.0, MATH, da, 0.0, (void)0)                                    \
    }
#define PYAD_MAP_2(NAME, name, MATH)                                                               \
    static int64_t map_##name(const map_in *m, int form, int64_t n, map_fail *f)                   \
    {                                                                                              \
        MAP_LOCALS                                                                                 \
        if (form == PYAD_FORM_PLAIN) {                                                             \
            MAP_LOOP(val[SLOT(ha[k])], val[SLOT(hb[k])], MATH, da, db, qs[k] = db)                 \
        }                                                                                          \
        if (form == PYAD_FORM_VC) {                                                                \
            MAP_LOOP(val[SLOT(ha[k])], cb[k], MATH, da, 0.0, (void)0)                              \
        }                                                                                          \
        MAP_LOOP(ca[k], val[SLOT(hb[k])], MATH, db, 0.0, (void)0)                                  \
    }
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) PYAD_MAP_##ARITY(NAME, name, MATH)
#include "ops.def"
#undef PYAD_OP
#undef PYAD_REFUSED

typedef int64_t (*map_fn)(const map_in *m, int form, int64_t n, map_fail *f);
#define PYAD_MAP_ENTRY_0(name) NULL
#define PYAD_MAP_ENTRY_PYAD_NARY(name) NULL
#define PYAD_MAP_ENTRY_1(name) map_##name
#define PYAD_MAP_ENTRY_2(name) map_##name
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) [PYAD_OP_##NAME] = PYAD_MAP_ENTRY_##ARITY(name),
static const map_fn map_table[PYAD_OP_COUNT] = {
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

static int check_handles(pyad_tape *t, int64_t n, const int64_t *h, int64_t *where)
{
    uint32_t s;
    for (int64_t k = 0; h != NULL && k < n; k++)
        if (PYAD_UNLIKELY(pyad__resolve(t, h[k], &s) != PYAD_OK))
            return at_element(t, PYAD_STALE, k, where);
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
    if (op < 0 || op >= PYAD_OP_COUNT || map_table[op] == NULL)
        return pyad__fail(t, PYAD_MISUSE, "pyad_push_map records unary and binary ops, not op %d",
                          op);
    int form;
    if ((st = check_size(t, n, out)) != PYAD_OK || n == 0)
        return st;
    if ((st = map_form(t, op, ha, ca, hb, cb, &form)) != PYAD_OK)
        return st;
    if (form == PYAD_FORM_CV)
        ha = NULL;
    if (form == PYAD_FORM_VC)
        hb = NULL;
    if ((st = check_handles(t, n, ha, where)) != PYAD_OK ||
        (st = check_handles(t, n, hb, where)) != PYAD_OK)
        return st;
    const int plain2 = form == PYAD_FORM_PLAIN && pyad__arity[op] == 2;
    double *y = pyad__malloc((size_t)n * (plain2 ? 3 : 2) * sizeof *y);
    if (y == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory for %lld values", (long long)n);
    const map_in m = {t, ha, hb, ca, cb, y, y + n, plain2 ? y + 2 * n : NULL};
    map_fail f;
    const int64_t k = map_table[op](&m, form, n, &f);
    if (k < n) {
        free(y);
        st = f.st == PYAD_NONFINITE ? pyad__nonfinite(t, op, f.x[0], f.x[1], f.x[2])
                                    : pyad__math_error(t, f.st, op, f.x[0], f.x[1]);
        return at_element(t, st, k, where);
    }
    if ((st = pyad__prepare(t, (uint32_t)n, 0, 0)) == PYAD_OK) {
        /* record.c's layout: a constant b (or a) kept in rec.db, the record's partial in
           rec.da, its one operand in rec.a */
        const unsigned kind = (unsigned)op | (unsigned)form << PYAD_OP_BITS;
        const columns c = {kind,
                           y,
                           form == PYAD_FORM_CV ? hb : ha,
                           plain2 ? hb : NULL,
                           m.p,
                           form == PYAD_FORM_VC   ? cb
                           : form == PYAD_FORM_CV ? ca
                                                  : m.q};
        st = write_records(t, n, &c, out);
    }
    free(y);
    return st;
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
    double *v = scratch(t, nout, count), *r = v + nout * count;
    if (v == NULL)
        return PYAD_NOMEM;
    for (int64_t j = 0; j < nout; j++) {
        double *vj = v + j * count;
        pyad__gather(t, count, group(handles, consts, j, count), vj);
        if ((st = pyad__reduce_value(t, op, vj, count, r + 3 * j)) != PYAD_OK) {
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
    double *wx = scratch(t, nout, 2 * count), *y = wx + 2 * nout * count;
    if (wx == NULL)
        return PYAD_NOMEM;
    for (int64_t j = 0; j < nout; j++) {
        double *wj = wx + 2 * j * count;
        pyad__dot_gather(t, count, group(hw, cw, j, count), group(hx, cx, j, count), wj);
        if ((st = pyad__dot_value(t, wj, count, y + j)) != PYAD_OK) {
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
