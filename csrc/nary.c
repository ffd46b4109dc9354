/*
 * nary.c - ops over lists of operands: sum, dot, logsumexp (one record each), and the groups
 * of several records: softmax and matvec (one record per output). Each record keeps its
 * operands in its chunk's side arrays: the operand's slot and partial, or, for a constant
 * operand, the record's own slot and the constant (so a replay can recompute it; the sweep's
 * write to the own slot is overwritten).
 *
 * An operand list is a pair of arrays: handles h and constants c. Operand j is the record
 * h[j] when h is given and h[j] != 0, else the constant c[j]; either array may be NULL when
 * every operand is of the other kind, which spares the caller from building it.
 *
 * A group of n outputs is n consecutive records, which may run into later chunks. Output 0,
 * the head, holds what the group shares; each later output i holds rec = {a: one entry,
 * b: 1, da: i, db} whose entry is a link to the head (its slot), so that collecting chunks
 * keeps the head, and what it holds, for as long as any output is kept. Outputs die on their
 * own: each holds what its partials need besides the head's share.
 *
 * A softmax of n operands stores O(n): its partials y_i (delta_ij - y_j) follow from its
 * outputs, so the sweep computes them (pyad__softmax_partial, as a replay does) instead of
 * reading n^2 of them.
 *   - the head: rec = {a: its operand list, b: n, da: 0, db: c_0}; the list's entries hold
 *     the operand's slot and y_j (the output of the same index), or, for a constant, the
 *     head's own slot and the constant;
 *   - output i > 0: db = c_i, each holding y_i, c_i for its own partials.
 * c_i is 1 - y_i kept accurate (pyad__softmax_rest).
 *
 * A matvec y = C x (pyad_push_matvec: C a constant rows x count matrix, x count records)
 * stores the matrix once, 8 bytes an element, and x's list once:
 *   - the head: rec = {a: x's list, b: count, da: 0, db: o}; the list's entries hold x_k's
 *     slot (and 0.0: the partials are in the matrix); o is the offset of the group's block in
 *     the mat array of the head's chunk: block[0] = rows, block[1] = x_0's slot if x's slots
 *     are consecutive (the sweep's fast path) else -1, then C row-major. Integers kept in
 *     doubles are exact (offsets are kept below 2^52, arena.c);
 *   - output i > 0: db = 0; its partials are row i of the head's matrix.
 * A borrowed matrix (pyad_push_matvec_borrowed) stays the caller's: the block is then
 * {-rows, x_0's slot or -1, C's address (its bits), then per row its fingerprint, two
 * uint64_t (pyad__row_print)}, and the tape's list of borrows notes the head's chunk and its
 * life, so that pyad_tape_released can say when the caller may let the matrix go.
 * Only the statistics (stats.c), pyad_get_operands (access.c), program.c and sweep.c know
 * these layouts, through pyad__group_head, pyad__later_output and pyad__matvec_of.
 */
#include <math.h>
#include <stdlib.h>

#include "alloc.h"
#include "internal.h"
#include "narymath.h"

static int64_t handle_at(pyad_operands l, int64_t j)
{
    return l.h != NULL ? l.h[j * l.stride] : 0;
}

/* Value of operand j; the list must have passed pyad__check_operands. */
static double value_at(const pyad_tape *t, pyad_operands l, int64_t j)
{
    const int64_t h = handle_at(l, j);
    return h != 0 ? t->val[(uint32_t)h & PYAD_SLOT_MASK] : l.c[j * l.stride];
}

int pyad__check_operands(pyad_tape *t, int64_t n, pyad_operands l)
{
    uint32_t s;
    for (int64_t j = 0; j < n; j++) {
        const int64_t h = handle_at(l, j);
        if (h != 0) {
            if (pyad__resolve(t, h, &s) != PYAD_OK)
                return PYAD_STALE;
        } else if (l.c == NULL) {
            return pyad__fail(t, PYAD_MISUSE, "operand %lld is neither a record nor a constant",
                              (long long)j);
        }
    }
    return PYAD_OK;
}

int pyad__check_count(pyad_tape *t, int64_t n, int nonempty, const char *what)
{
    if (n < 0 || n > (int64_t)(UINT32_MAX / 4))
        return pyad__fail(t, PYAD_MISUSE, "bad operand count %lld", (long long)n);
    if (nonempty && n == 0)
        return pyad__fail(t, PYAD_DOMAIN, "math domain error: %s of no values", what);
    return PYAD_OK;
}

/* The operands' values, gathered into vals[0..n) (stride 1) for the shared arithmetic of
   narymath.h; the list must have passed pyad__check_operands. */
static void gather(const pyad_tape *t, int64_t n, pyad_operands l, double *vals)
{
    for (int64_t j = 0; j < n; j++)
        vals[j] = value_at(t, l, j);
}

/* Scratch for n operand values: `small` when it fits, else the heap (NULL when out of
   memory; then *st is set). Release with release_values. */
#define PYAD_SMALL 16
static double *values_buffer(pyad_tape *t, int64_t n, double *small, int *st)
{
    if (n <= PYAD_SMALL)
        return small;
    double *v = pyad__malloc((size_t)n * sizeof *v);
    if (v == NULL)
        *st = pyad__fail(t, PYAD_NOMEM, "out of memory for %lld operand values", (long long)n);
    return v;
}

static void release_values(double *v, const double *small)
{
    if (v != small)
        free(v);
}

static void put_side(pyad_chunk *ch, uint32_t e, uint32_t self, int64_t h, double partial,
                     double constant)
{
    ch->side_slot[e] = h != 0 ? (uint32_t)h & PYAD_SLOT_MASK : self;
    ch->side_val[e] = h != 0 ? partial : constant;
}

static void put_record(pyad_tape *t, uint32_t s, int op, uint32_t first, uint32_t count, double y,
                       double aux, double aux2)
{
    t->kind[s] = (uint8_t)op;
    t->rec[s] = (pyad_rec){first, count | PYAD_NARY_BIT, aux, aux2};
    t->val[s] = y;
    t->grad[s] = 0.0;
}

/* Room for one n-ary record and its `nside` operand entries: the record's chunk, its slot and
   its first entry; NULL (and *st) when out of memory. */
static pyad_chunk *reserve_nary(pyad_tape *t, uint32_t nside, uint32_t *slot, uint32_t *first,
                                int *opened, int *st)
{
    if ((*st = pyad__reserve(t, 1, nside, slot, opened)) != PYAD_OK)
        return NULL;
    pyad_chunk *ch = &t->chunks[t->cur];
    *first = ch->side_len;
    return ch;
}

static int64_t finish(pyad_tape *t, uint32_t slot, uint32_t nside, int opened)
{
    pyad__commit(t, 1, nside);
    return opened ? -(int64_t)PYAD_SEGMENT : pyad__handle(t, slot);
}

int pyad__reduce_value(pyad_tape *t, int op, pyad_operands l, int64_t n, double *v, double r[3])
{
    gather(t, n, l, v);
    double m = 0.0, s = 0.0;
    const double y = op == PYAD_OP_SUM ? pyad__sum_of(v, n) : pyad__lse_of(v, n, &m, &s);
    for (int64_t j = 0; PYAD_UNLIKELY(t->debug) && j <= n; j++) {
        const double p = j == n || op == PYAD_OP_SUM ? 1.0 : pyad__lse_partial(v[j], m, s);
        if (!pyad__finite(t, y, p, 0.0))
            return pyad__nonfinite(t, op, y, p, 0.0);
    }
    r[0] = y;
    r[1] = m;
    r[2] = s;
    return PYAD_OK;
}

void pyad__reduce_put(pyad_tape *t, uint32_t slot, uint32_t first, int op, pyad_operands l,
                      const double *v, int64_t n, const double r[3])
{
    pyad_chunk *ch = &t->chunks[slot >> PYAD_CHUNK_BITS];
    for (int64_t j = 0; j < n; j++) {
        const double p = op == PYAD_OP_SUM ? 1.0 : pyad__lse_partial(v[j], r[1], r[2]);
        put_side(ch, first + (uint32_t)j, slot, handle_at(l, j), p, v[j]);
    }
    put_record(t, slot, op, first, (uint32_t)n, r[0], 0.0, 0.0);
}

int64_t pyad_push_nary(pyad_tape *t, int op, int64_t n, const int64_t *handles,
                       const double *consts)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return -st;
    if (op != PYAD_OP_SUM && op != PYAD_OP_LOGSUMEXP)
        return -pyad__fail(t, PYAD_MISUSE, "pyad_push_nary records sum and logsumexp, not op %d",
                           op);
    const pyad_operands l = {handles, consts, 1};
    if ((st = pyad__check_count(t, n, op == PYAD_OP_LOGSUMEXP, "logsumexp")) != PYAD_OK ||
        (st = pyad__check_operands(t, n, l)) != PYAD_OK)
        return -st;
    double small[PYAD_SMALL];
    double *v = values_buffer(t, n, small, &st);
    if (v == NULL)
        return -st;
    /* Value first: nothing is reserved until the record is sure to be written. */
    double r[3];
    uint32_t slot, first;
    int opened;
    pyad_chunk *ch = NULL;
    if ((st = pyad__reduce_value(t, op, l, n, v, r)) == PYAD_OK &&
        (ch = reserve_nary(t, (uint32_t)n, &slot, &first, &opened, &st)) != NULL)
        pyad__reduce_put(t, slot, first, op, l, v, n, r);
    release_values(v, small);
    return ch == NULL ? -st : finish(t, slot, (uint32_t)n, opened);
}

int pyad__dot_value(pyad_tape *t, pyad_operands w, pyad_operands x, int64_t n, double *wx,
                    double *y)
{
    for (int64_t j = 0; j < n; j++) {
        wx[2 * j] = value_at(t, w, j);
        wx[2 * j + 1] = value_at(t, x, j);
    }
    *y = pyad__dot_of(wx, n);
    for (int64_t j = 0; PYAD_UNLIKELY(t->debug) && j <= n; j++) {
        const double pw = j == n ? 0.0 : wx[2 * j + 1], px = j == n ? 0.0 : wx[2 * j];
        if (!pyad__finite(t, *y, pw, px))
            return pyad__nonfinite(t, PYAD_OP_DOT, *y, pw, px);
    }
    return PYAD_OK;
}

void pyad__dot_put(pyad_tape *t, uint32_t slot, uint32_t first, pyad_operands w, pyad_operands x,
                   const double *wx, int64_t n, double y)
{
    pyad_chunk *ch = &t->chunks[slot >> PYAD_CHUNK_BITS];
    for (int64_t j = 0; j < n; j++) {
        const double vw = wx[2 * j], vx = wx[2 * j + 1];
        const uint32_t e = first + 2 * (uint32_t)j;
        put_side(ch, e, slot, handle_at(w, j), vx, vw);
        put_side(ch, e + 1, slot, handle_at(x, j), vw, vx);
    }
    put_record(t, slot, PYAD_OP_DOT, first, 2 * (uint32_t)n, y, 0.0, 0.0);
}

int64_t pyad_push_dot(pyad_tape *t, int64_t n, const int64_t *hw, const double *cw,
                      const int64_t *hx, const double *cx)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return -st;
    const pyad_operands w = {hw, cw, 1}, x = {hx, cx, 1};
    if ((st = pyad__check_count(t, n, 0, "dot")) != PYAD_OK ||
        (st = pyad__check_operands(t, n, w)) != PYAD_OK ||
        (st = pyad__check_operands(t, n, x)) != PYAD_OK)
        return -st;
    double small[PYAD_SMALL];
    double *wx = values_buffer(t, 2 * n, small, &st); /* w0, x0, w1, x1, ... */
    if (wx == NULL)
        return -st;
    double y;
    uint32_t slot, first;
    int opened;
    pyad_chunk *ch = NULL;
    if ((st = pyad__dot_value(t, w, x, n, wx, &y)) == PYAD_OK &&
        (ch = reserve_nary(t, 2 * (uint32_t)n, &slot, &first, &opened, &st)) != NULL)
        pyad__dot_put(t, slot, first, w, x, wx, n, y);
    release_values(wx, small);
    return ch == NULL ? -st : finish(t, slot, 2 * (uint32_t)n, opened);
}

int pyad_push_softmax(pyad_tape *t, int64_t n, const int64_t *handles, const double *consts,
                      int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    const pyad_operands l = {handles, consts, 1};
    if ((st = pyad__check_count(t, n, 1, "softmax")) != PYAD_OK ||
        (st = pyad__check_operands(t, n, l)) != PYAD_OK)
        return st;
    if (out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    const uint32_t count = (uint32_t)n;
    double *v = pyad__malloc(2 * (size_t)count * sizeof *v); /* operand values, then outputs */
    if (v == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory for softmax");
    double *y = v + count;
    gather(t, n, l, v);
    const double m = pyad__max_of(v, n);
    if (!isfinite(m)) {
        free(v);
        return pyad__fail(t, PYAD_DOMAIN, "math domain error: softmax of a non-finite maximum");
    }
    pyad__softmax_of(v, n, m, y);
    for (uint32_t i = 0; PYAD_UNLIKELY(t->debug) && i < count; i++)
        if (!pyad__finite(t, y[i], 0.0, 0.0)) {
            const double yi = y[i];
            free(v);
            return pyad__nonfinite(t, PYAD_OP_SOFTMAX, yi, 0.0, 0.0);
        }
    /* The only step that changes the tape before the records are written: the operand list
       in the chunk of output 0, a link in the chunk of each later output. */
    if ((st = pyad__prepare(t, count, 1, count - 1)) != PYAD_OK) {
        free(v);
        return st;
    }
    double rest;
    const int64_t top = pyad__softmax_top(y, n, &rest);
    int opened = 0;
    uint32_t head = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint32_t slot = pyad__next_slot(t, &opened);
        pyad_chunk *ch = &t->chunks[t->cur];
        const uint32_t first = ch->side_len;
        const double ci = pyad__softmax_rest(y, i, top, rest);
        if (i == 0) {
            head = slot;
            for (uint32_t j = 0; j < count; j++)
                put_side(ch, first + j, slot, handle_at(l, j), y[j], v[j]);
            put_record(t, slot, PYAD_OP_SOFTMAX, first, count, y[0], 0.0, ci);
            pyad__commit(t, 1, count);
        } else {
            ch->side_slot[first] = head;
            ch->side_val[first] = 0.0;
            put_record(t, slot, PYAD_OP_SOFTMAX, first, 1, y[i], (double)i, ci);
            pyad__commit(t, 1, 1);
        }
        out[i] = pyad__handle(t, slot);
    }
    free(v);
    return opened ? PYAD_SEGMENT : PYAD_OK;
}

uint32_t pyad__group_head(const pyad_tape *t, uint32_t s)
{
    const pyad_rec r = t->rec[s];
    if (r.da == 0.0)
        return s;
    /* The link names the head's slot. A kept output keeps its head, but an output nothing
       kept (in a chunk kept for another record's sake) may outlive it, and the slot may hold
       a newer record by now: that one is not older than s, so it is told apart. */
    const unsigned op = t->kind[s] & PYAD_OP_MASK;
    const uint32_t h = t->chunks[s >> PYAD_CHUNK_BITS].side_slot[r.a];
    if (!pyad__older_record(t, h, s))
        return PYAD_NO_HEAD;
    const pyad_rec hr = t->rec[h];
    if ((t->kind[h] & PYAD_OP_MASK) != op || hr.da != 0.0)
        return PYAD_NO_HEAD;
    const uint32_t n = op == PYAD_OP_SOFTMAX ? hr.b & ~PYAD_NARY_BIT : pyad__matvec_of(t, h).rows;
    return n <= (uint32_t)r.da ? PYAD_NO_HEAD : h;
}

int pyad__group_orphan(pyad_tape *t, int64_t h)
{
    return pyad__fail(t, PYAD_STALE,
                      "handle %#llx names a %s output whose first output's segment was "
                      "reused (nothing kept that output)",
                      (unsigned long long)h,
                      pyad_op_name(t->kind[(uint32_t)h & PYAD_SLOT_MASK] & PYAD_OP_MASK));
}

int64_t pyad__group_operands(pyad_tape *t, uint32_t s, int64_t cap, int64_t *handles,
                             double *partials)
{
    const uint32_t h = pyad__group_head(t, s), i = (uint32_t)t->rec[s].da;
    if (h == PYAD_NO_HEAD)
        return -1;
    int64_t k = 0;
    if ((t->kind[s] & PYAD_OP_MASK) == PYAD_OP_MATVEC) {
        const pyad_matvec g = pyad__matvec_of(t, h);
        for (uint32_t j = 0; j < g.count; j++)
            if (!pyad__older_record(t, g.x[j], h))
                return -3;
        if (pyad__matvec_check(t, g, NULL, i, i + 1) != PYAD_OK)
            return -2;
        const double *row = g.c + (uint64_t)i * g.count;
        for (uint32_t j = 0; j < g.count; j++, k++)
            if (k < cap) {
                handles[k] = pyad__handle(t, g.x[j]);
                partials[k] = row[j];
            }
        return k;
    }
    const pyad_chunk *ch = &t->chunks[h >> PYAD_CHUNK_BITS];
    const pyad_rec r = t->rec[h];
    const double yi = t->val[s], ci = t->rec[s].db;
    for (uint32_t j = 0, n = r.b & ~PYAD_NARY_BIT; j < n; j++)
        if (ch->side_slot[r.a + j] != h && !pyad__older_record(t, ch->side_slot[r.a + j], h))
            return -3;
    for (uint32_t j = 0, n = r.b & ~PYAD_NARY_BIT; j < n; j++) {
        const uint32_t o = ch->side_slot[r.a + j];
        if (o == h)
            continue; /* a constant */
        if (k < cap) {
            handles[k] = pyad__handle(t, o);
            partials[k] = pyad__softmax_partial(yi, ci, ch->side_val[r.a + j], i == j);
        }
        k++;
    }
    return k;
}

/* Room for one more borrowed matrix in t's list; the list is not counted in nbytes. */
static int borrow_room(pyad_tape *t)
{
    if (t->nborrows < t->borrows_cap)
        return PYAD_OK;
    const uint32_t want = t->borrows_cap < 8 ? 8 : t->borrows_cap * 2;
    if (want <= t->borrows_cap)
        return pyad__fail(t, PYAD_FULL, "too many borrowed matrices");
    pyad_borrow *b = pyad__realloc(t->borrows, (size_t)want * sizeof *b);
    if (b == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory for a borrowed matrix's note");
    t->borrows = b;
    t->borrows_cap = want;
    return PYAD_OK;
}

int pyad__matvec_changed_fail(pyad_tape *t, pyad_matvec g, uint64_t row)
{
    return pyad__fail(t, PYAD_CHANGED,
                      "the matrix of a matvec (%u x %u) changed in place since it was "
                      "recorded (row %llu): pyad reads the matrix itself, so change it only "
                      "after the gradients that use it, or record a copy",
                      g.rows, g.count, (unsigned long long)row);
}

int pyad__matvec_check(pyad_tape *t, pyad_matvec g, const double *adj, uint64_t jlo, uint64_t jhi)
{
    if (g.prints == NULL)
        return PYAD_OK;
    const uint64_t j = pyad__matvec_changed(g.c, g.count, g.prints, adj, jlo, jhi);
    return j == UINT64_MAX ? PYAD_OK : pyad__matvec_changed_fail(t, g, j);
}

/* pyad_push_matvec, and pyad_push_matvec_borrowed when `borrowed`: the head's block is then
   {-rows, x0, the matrix's address, the rows' fingerprints} instead of {rows, x0, C}. */
static int push_matvec(pyad_tape *t, int64_t nout, int64_t count, const double *matrix,
                       const int64_t *hx, int borrowed, int64_t token, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (nout < 0 || nout > (int64_t)PYAD_MAX_CHUNKS * PYAD_CHUNK)
        return pyad__fail(t, PYAD_MISUSE, "bad record count %lld", (long long)nout);
    if ((st = pyad__check_count(t, count, 0, "matvec")) != PYAD_OK || nout == 0)
        return st;
    if (out == NULL || (count > 0 && (matrix == NULL || hx == NULL)))
        return pyad__fail(t, PYAD_MISUSE, "NULL %s", out == NULL ? "out-pointer" : "operands");
    if ((st = pyad__check_operands(t, count, (pyad_operands){hx, NULL, 1})) != PYAD_OK)
        return st;
    const uint32_t rows = (uint32_t)nout, n = (uint32_t)count;
    /* x's values, then the outputs: computed before anything is reserved (debug mode may
       refuse one), the matrix read once here and once when copied */
    double *v = pyad__malloc(((size_t)n + rows) * sizeof *v);
    if (v == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory for matvec");
    double *y = v + n;
    int consecutive = 1;
    for (uint32_t k = 0; k < n; k++) {
        const uint32_t slot = (uint32_t)hx[k] & PYAD_SLOT_MASK;
        v[k] = t->val[slot];
        consecutive &= slot == ((uint32_t)hx[0] & PYAD_SLOT_MASK) + k;
    }
    /* Debug mode checks the outputs before anything is reserved, so it computes them first
       and copies (or fingerprints) the matrix after; otherwise the rows are computed as the
       matrix is copied, once room for it is made (a push that fails there has computed
       nothing yet). */
    const int checked = t->debug;
    if (checked)
        pyad__matvec_forward(matrix, n, v, rows, y, NULL, NULL);
    for (uint32_t j = 0; PYAD_UNLIKELY(checked) && j < rows; j++) {
        /* what pyad_push_dots checks, in its order: each pair's partials, then the value */
        const double *row = n > 0 ? matrix + (size_t)j * n : NULL; /* NULL with no columns */
        for (uint32_t k = 0; k <= n; k++) {
            const double px = k == n ? 0.0 : row[k], pc = k == n ? 0.0 : v[k];
            if (!pyad__finite(t, y[j], pc, px)) {
                const double yj = y[j];
                free(v);
                pyad__nonfinite(t, PYAD_OP_MATVEC, yj, pc, px);
                return pyad__fail_more(t, PYAD_NONFINITE, " at output %u", j);
            }
        }
    }
    /* The only steps that change the tape before the records are written: room in the list
       of borrowed matrices (not counted in nbytes), then x's list and the matrix block in
       the chunk of output 0, a link in the chunk of each later output. */
    const uint64_t block = borrowed ? 3 + 2 * (uint64_t)rows : 2 + (uint64_t)rows * n;
    if ((borrowed && (st = borrow_room(t)) != PYAD_OK) ||
        (st = pyad__prepare_mat(t, rows, 1, n > 0 ? n - 1 : 0, block)) != PYAD_OK) {
        free(v);
        return st;
    }
    int opened = 0;
    uint32_t head = 0;
    for (uint32_t j = 0; j < rows; j++) {
        const uint32_t slot = pyad__next_slot(t, &opened);
        pyad_chunk *ch = &t->chunks[t->cur];
        const uint32_t first = ch->side_len;
        if (j == 0) {
            head = slot;
            for (uint32_t k = 0; k < n; k++) {
                ch->side_slot[first + k] = (uint32_t)hx[k] & PYAD_SLOT_MASK;
                ch->side_val[first + k] = 0.0;
            }
            const uint64_t o = ch->mat_len;
            double *b = ch->mat + o;
            b[0] = borrowed ? -(double)rows : (double)rows;
            b[1] = consecutive && n > 0 ? (double)((uint32_t)hx[0] & PYAD_SLOT_MASK) : -1.0;
            uint64_t *prints = borrowed ? (uint64_t *)(void *)(b + 3) : NULL;
            double *copy = borrowed || n == 0 ? NULL : b + 2;
            if (borrowed)
                memcpy(b + 2, &matrix, sizeof matrix);
            if (checked && copy != NULL)
                memcpy(copy, matrix, (size_t)rows * n * sizeof *b);
            for (uint32_t i = 0; checked && prints != NULL && i < rows; i++)
                pyad__row_print(matrix + (size_t)i * n, n, prints + 2 * i);
            if (!checked && n > 0)
                pyad__matvec_forward(matrix, n, v, rows, y, copy, prints);
            else if (!checked)
                memset(y, 0, rows * sizeof *y); /* no columns: every row sums nothing */
            if (!checked && n == 0 && prints != NULL)
                memset(prints, 0, 2 * (size_t)rows * sizeof *prints); /* empty rows' prints */
            ch->mat_len = o + block;
            put_record(t, slot, PYAD_OP_MATVEC, first, n, y[0], 0.0, (double)o);
            pyad__commit(t, 1, n);
        } else {
            ch->side_slot[first] = head;
            ch->side_val[first] = 0.0;
            put_record(t, slot, PYAD_OP_MATVEC, first, 1, y[j], (double)j, 0.0);
            pyad__commit(t, 1, 1);
        }
        out[j] = pyad__handle(t, slot);
    }
    if (borrowed) {
        const uint32_t c = head >> PYAD_CHUNK_BITS;
        t->borrows[t->nborrows++] = (pyad_borrow){token, c, t->chunks[c].life};
    }
    free(v);
    return opened ? PYAD_SEGMENT : PYAD_OK;
}

int pyad_push_matvec(pyad_tape *t, int64_t nout, int64_t count, const double *matrix,
                     const int64_t *hx, int64_t *out)
{
    return push_matvec(t, nout, count, matrix, hx, 0, 0, out);
}

int pyad_push_matvec_borrowed(pyad_tape *t, int64_t nout, int64_t count, const double *matrix,
                              const int64_t *hx, int64_t token, int64_t *out)
{
    return push_matvec(t, nout, count, matrix, hx, 1, token, out);
}

int pyad_tape_released(pyad_tape *t, int64_t cap, int64_t *tokens, int64_t *n)
{
    const int st = pyad__enter_out(t, n);
    if (st != PYAD_OK)
        return st;
    if (cap < 0 || (cap > 0 && tokens == NULL))
        return pyad__fail(t, PYAD_MISUSE, "bad token buffer");
    *n = 0;
    for (uint32_t i = 0; i < t->nborrows && *n < cap;) {
        const pyad_borrow b = t->borrows[i];
        if (t->chunks[b.chunk].life == b.life) {
            i++;
            continue;
        }
        tokens[(*n)++] = b.token;
        t->borrows[i] = t->borrows[--t->nborrows]; /* order is of no use */
    }
    return PYAD_OK;
}

int64_t pyad_push_primitive(pyad_tape *t, int64_t n, const int64_t *handles, const double *consts,
                            double value, const double *partials)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return -st;
    const pyad_operands l = {handles, consts, 1};
    if ((st = pyad__check_count(t, n, 0, "primitive")) != PYAD_OK ||
        (st = pyad__check_operands(t, n, l)) != PYAD_OK)
        return -st;
    if (n > 0 && partials == NULL)
        return -pyad__fail(t, PYAD_MISUSE, "NULL partials");
    if (PYAD_UNLIKELY(t->debug)) {
        for (int64_t j = 0; j < n; j++)
            if (handle_at(l, j) != 0 && !pyad__finite(t, value, partials[j], 0.0))
                return -pyad__nonfinite(t, PYAD_OP_PRIMITIVE, value, partials[j], 0.0);
        if (!pyad__finite(t, value, 0.0, 0.0))
            return -pyad__nonfinite(t, PYAD_OP_PRIMITIVE, value, 0.0, 0.0);
    }
    uint32_t slot, first;
    int opened;
    pyad_chunk *ch = reserve_nary(t, (uint32_t)n, &slot, &first, &opened, &st);
    if (ch == NULL)
        return -st;
    for (int64_t j = 0; j < n; j++) {
        const int64_t h = handle_at(l, j);
        put_side(ch, first + (uint32_t)j, slot, h, h != 0 ? partials[j] : 0.0, value_at(t, l, j));
    }
    put_record(t, slot, PYAD_OP_PRIMITIVE, first, (uint32_t)n, value, 0.0, 0.0);
    return finish(t, slot, (uint32_t)n, opened);
}

int pyad_eval_nary(int op, int64_t n, const double *x, double *out)
{
    if (n < 0 || (n > 0 && x == NULL) || out == NULL)
        return PYAD_MISUSE;
    double m, s;
    switch (op) {
    case PYAD_OP_SUM:
        out[0] = pyad__sum_of(x, n);
        return PYAD_OK;
    case PYAD_OP_DOT:
        if (n % 2 != 0)
            return PYAD_MISUSE;
        out[0] = pyad__dot_of(x, n / 2);
        return PYAD_OK;
    case PYAD_OP_LOGSUMEXP:
        if (n == 0)
            return PYAD_DOMAIN;
        out[0] = pyad__lse_of(x, n, &m, &s);
        return PYAD_OK;
    case PYAD_OP_SOFTMAX:
        if (n == 0)
            return PYAD_DOMAIN;
        m = pyad__max_of(x, n);
        if (!isfinite(m))
            return PYAD_DOMAIN;
        pyad__softmax_of(x, n, m, out);
        return PYAD_OK;
    default:
        return PYAD_MISUSE;
    }
}
