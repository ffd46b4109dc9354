/*
 * sweep.c - the reverse sweep.
 *
 * The sweep accumulates straight into grad: the grads of chunks that may hold nonzero grads
 * (dirty ones) are set aside first and added back at the end (old + new, the order the
 * pure-Python engine uses), so no adjoint array is kept beside grad. Records are visited newest to
 * oldest, which is a reverse topological order; each does grad[a] += da*g, grad[b] += db*g and
 * rewrites its own grad (undoing the self-write of leaves, unary and constant-operand records). No
 * recursion, no op dispatch except for n-ary records.
 */
#include <stdlib.h>

#include "alloc.h"
#include "internal.h"
#include "narymath.h"

/* Free the set-aside buffer after a sweep that needed more than this many chunks. */
#define PYAD_SAVE_KEEP 64u

/* Room to set aside `nchunks` chunks of grads (tape->save_val) and their ids. */
static int save_reserve(pyad_tape *t, size_t nchunks)
{
    if (nchunks <= t->save_cap)
        return PYAD_OK;
    const int st = pyad__within_cap(
        t, (nchunks - t->save_cap) * (sizeof *t->save_slot + PYAD_CHUNK * sizeof *t->save_val));
    if (st != PYAD_OK)
        return st;
    uint32_t *ids = pyad__realloc(t->save_slot, nchunks * sizeof *ids);
    if (ids == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory before the reverse sweep");
    t->save_slot = ids;
    double *vals = pyad__realloc(t->save_val, nchunks * PYAD_CHUNK * sizeof *vals);
    if (vals == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory before the reverse sweep");
    t->save_val = vals;
    t->save_cap = nchunks;
    return PYAD_OK;
}

static void save_free(pyad_tape *t)
{
    free(t->save_slot);
    free(t->save_val);
    t->save_slot = NULL;
    t->save_val = NULL;
    t->save_cap = 0;
}

static void save_release(pyad_tape *t)
{
    if (t->save_cap > PYAD_SAVE_KEEP)
        save_free(t);
}

/* After a failed sweep: the set-aside buffer back to the `cap` chunks it held before, so that
   nbytes is as it was too (shrinking keeps the start, so it cannot fail but in name; then
   the larger buffer stays, and so does nbytes's count of it). */
static void save_shrink(pyad_tape *t, size_t cap)
{
    if (cap >= t->save_cap)
        return;
    if (cap == 0) {
        save_free(t);
        return;
    }
    uint32_t *ids = realloc(t->save_slot, cap * sizeof *ids);
    double *vals = ids != NULL ? realloc(t->save_val, cap * PYAD_CHUNK * sizeof *vals) : NULL;
    if (ids != NULL)
        t->save_slot = ids;
    if (vals == NULL)
        return;
    t->save_val = vals;
    t->save_cap = cap;
}

/* Records of the chunk at order position k that the sweep from `top` visits. */
static uint32_t span(const pyad_tape *t, uint32_t k, uint32_t top_pos, uint32_t top_slot)
{
    return k == top_pos ? (top_slot & PYAD_CHUNK_MASK) + 1 : t->chunks[t->order[k]].fill;
}

/* Output s of a softmax: its partials from the outputs (nary.c has the layout), in the order
   and by the formula of a replay (replay.c), constants skipped. */
static void sweep_softmax(pyad_tape *t, uint32_t s, double g)
{
    const uint32_t h = pyad__group_head(t, s);
    if (h == PYAD_NO_HEAD)
        return; /* an output no live record uses: nothing reaches it from a live one */
    const pyad_chunk *ch = &t->chunks[h >> PYAD_CHUNK_BITS];
    const pyad_rec r = t->rec[h], self = t->rec[s];
    const uint32_t i = (uint32_t)self.da, n = r.b & ~PYAD_NARY_BIT;
    const uint32_t *slot = ch->side_slot + r.a;
    const double *y = ch->side_val + r.a;
    const double yi = t->val[s], ci = self.db;
    double *grad = t->grad;
    /* entries in order (a repeated operand sums in the replay's order), the diagonal apart */
    for (uint32_t j = 0; j < i; j++)
        if (slot[j] != h)
            grad[slot[j]] += pyad__softmax_partial(yi, ci, y[j], 0) * g;
    if (slot[i] != h)
        grad[slot[i]] += pyad__softmax_partial(yi, ci, y[i], 1) * g;
    for (uint32_t j = i + 1; j < n; j++)
        if (slot[j] != h)
            grad[slot[j]] += pyad__softmax_partial(yi, ci, y[j], 0) * g;
}

/* Output s of a matvec: row i of the matrix times g into x's grads, in k order, as the dot
   records of the same operands add (C[i,k] * g, constants skipped). Where x's slots are
   consecutive, the rows below s in its chunk go too: they are the group's rows i-1, i-2, ...,
   which the sweep would visit next with their adjoints final (no row feeds another), so
   pyad__matvec_axpys adds them here in that order, rows of a zero adjoint skipped as the
   sweep skips them, over parts of x's columns when large. Returns how many records below s
   it swept, or PYAD_SWEEP_FAILED when a borrowed matrix changed (before adding anything). */
#define PYAD_SWEEP_FAILED UINT32_MAX
static uint32_t sweep_matvec(pyad_tape *t, uint32_t s, double g, uint32_t below)
{
    const uint32_t h = pyad__group_head(t, s);
    if (h == PYAD_NO_HEAD)
        return 0;
    const pyad_matvec mv = pyad__matvec_of(t, h);
    const uint32_t i = (uint32_t)t->rec[s].da;
    const double *c = mv.c;
    const uint64_t n = mv.count;
    if (mv.x0 == PYAD_NONE) {
        if (pyad__matvec_check(t, mv, NULL, i, i + 1) != PYAD_OK)
            return PYAD_SWEEP_FAILED;
        const double *row = c + (uint64_t)i * n;
        double *grad = t->grad;
        for (uint32_t k = 0; k < mv.count; k++)
            grad[mv.x[k]] += row[k] * g;
        return 0;
    }
    uint32_t more = 0;
    while (more < below && more < i && (t->kind[s - more - 1] & PYAD_OP_MASK) == PYAD_OP_MATVEC &&
           (uint32_t)t->rec[s - more - 1].da == i - more - 1)
        more++;
    /* rows lo .. i, counted from lo: row lo + j's adjoint is grad[s - more + j] (row i's is g,
       which sweep_chunk read there). Not from row 0: s may be less than i, as a group's later
       rows may lie in segments of lower slots that were reused. */
    const uint32_t lo = i - more;
    const double *rows = c + (uint64_t)lo * n, *adj = t->grad + (s - more);
    if (mv.prints == NULL) {
        pyad__matvec_reverse(t->grad + mv.x0, rows, n, adj, 0, more + 1);
        return more;
    }
    /* a borrowed matrix: its rows checked as they are read (the rows of one chunk at most) */
    _Atomic uint64_t acc[2 * PYAD_CHUNK];
    const uint64_t bad = pyad__matvec_reverse_checked(t->grad + mv.x0, rows, n, adj, 0, more + 1,
                                                      mv.prints + 2 * (uint64_t)lo, acc);
    if (bad != UINT64_MAX) {
        pyad__matvec_changed_fail(t, mv, lo + bad);
        return PYAD_SWEEP_FAILED;
    }
    return more;
}

/* Output s of an n-ary record; returns how many records below s it swept too (see
   sweep_matvec), of the `below` in its chunk, or PYAD_SWEEP_FAILED. */
PYAD_NOINLINE uint32_t sweep_nary(pyad_tape *t, uint32_t s, double g, uint32_t below)
{
    const unsigned op = t->kind[s] & PYAD_OP_MASK;
    if (op == PYAD_OP_SOFTMAX) {
        sweep_softmax(t, s, g);
        return 0;
    }
    if (op == PYAD_OP_MATVEC)
        return sweep_matvec(t, s, g, below);
    const pyad_chunk *ch = &t->chunks[s >> PYAD_CHUNK_BITS];
    double *grad = t->grad;
    const pyad_rec r = t->rec[s];
    for (uint32_t e = r.a, end = r.a + (r.b & ~PYAD_NARY_BIT); e < end; e++)
        grad[ch->side_slot[e]] += ch->side_val[e] * g;
    return 0;
}

/* PYAD_OK, or the status of a borrowed matrix found changed (sweep_matvec) */
static int sweep_chunk(pyad_tape *t, uint32_t c, uint32_t n)
{
    const uint32_t base = c << PYAD_CHUNK_BITS;
    const pyad_rec *restrict rec = t->rec + base;
    double *grad = t->grad;
    for (uint32_t j = n; j-- > 0;) {
        const double g = grad[base + j];
        if (g == 0.0)
            continue;
        const pyad_rec r = rec[j];
        if (PYAD_UNLIKELY(r.b & PYAD_NARY_BIT)) {
            /* the records swept with it have no self-write to undo: n-ary ones add to
               their operands only */
            const uint32_t more = sweep_nary(t, base + j, g, j);
            if (PYAD_UNLIKELY(more == PYAD_SWEEP_FAILED))
                return PYAD_CHANGED;
            grad[base + j] = g;
            j -= more;
            continue;
        }
        grad[r.a] += r.da * g;
        grad[r.b] += r.db * g;
        grad[base + j] = g;
    }
    return PYAD_OK;
}

/* After a sweep failed part-way: every grad of the swept range back to what it was, the
   set-aside ones from the save, the others to 0 (their chunks were not dirty). */
static void undo_sweep(pyad_tape *t, uint32_t top, uint32_t r, size_t saved)
{
    size_t i = 0;
    for (uint32_t k = 0; k <= top; k++) {
        double *grad = t->grad + ((size_t)t->order[k] << PYAD_CHUNK_BITS);
        const uint32_t n = span(t, k, top, r);
        if (i < saved && t->save_slot[i] == k)
            memcpy(grad, t->save_val + i++ * PYAD_CHUNK, n * sizeof *grad);
        else
            memset(grad, 0, n * sizeof *grad);
    }
}

int pyad_backward(pyad_tape *t, int64_t h, double upstream)
{
    uint32_t r = 0;
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if ((st = pyad__resolve(t, h, &r)) != PYAD_OK)
        return st;
    if (pyad__later_output(t, r) && pyad__group_head(t, r) == PYAD_NO_HEAD)
        return pyad__group_orphan(t, h);
    const uint32_t top = t->chunks[r >> PYAD_CHUNK_BITS].pos;

    /* Grads already nonzero in the swept range (chunks marked dirty) are set aside and zeroed,
       so the sweep sees exactly this call's adjoints; they are added back afterwards. */
    size_t ndirty = 0;
    for (uint32_t k = 0; k <= top; k++)
        ndirty += t->chunks[t->order[k]].dirty;
    const size_t old_cap = t->save_cap;
    if ((st = save_reserve(t, ndirty)) != PYAD_OK)
        return st;
    size_t saved = 0;
    for (uint32_t k = 0; k <= top; k++) {
        const uint32_t c = t->order[k];
        if (!t->chunks[c].dirty)
            continue;
        double *grad = t->grad + ((size_t)c << PYAD_CHUNK_BITS);
        const uint32_t n = span(t, k, top, r);
        memcpy(t->save_val + saved * PYAD_CHUNK, grad, n * sizeof *grad);
        memset(grad, 0, n * sizeof *grad);
        t->save_slot[saved++] = k;
    }

    t->grad[r] = upstream;
    for (uint32_t k = top + 1; k-- > 0;) {
        const uint32_t c = t->order[k];
        if ((st = sweep_chunk(t, c, span(t, k, top, r))) != PYAD_OK) {
            undo_sweep(t, top, r, saved);
            save_shrink(t, old_cap);
            return st;
        }
        t->chunks[c].dirty = 1;
    }

    for (size_t i = 0; i < saved; i++) {
        const uint32_t k = t->save_slot[i];
        double *grad = t->grad + ((size_t)t->order[k] << PYAD_CHUNK_BITS);
        const double *old = t->save_val + i * PYAD_CHUNK;
        for (uint32_t j = 0, n = span(t, k, top, r); j < n; j++)
            grad[j] = old[j] + grad[j];
    }
    save_release(t);
    return PYAD_OK;
}
