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

/* Is record q row j of the matvec group whose first output is h? */
static int group_row(const pyad_tape *t, uint32_t q, uint32_t j, uint32_t h)
{
    return (t->kind[q] & PYAD_OP_MASK) == PYAD_OP_MATVEC && (uint32_t)t->rec[q].da == j &&
           (j == 0 ? q == h : pyad__group_head(t, q) == h);
}

/* Rows shift + lo .. shift + i of g's matrix into x's grads, row shift + j's adjoint adj[j]
   (only adj[lo .. i] are read), checking a borrowed matrix's rows as they are read (acc:
   2 (i + 1 - lo) entries). */
static int reverse_rows(pyad_tape *t, pyad_matvec g, uint32_t shift, const double *adj, uint32_t lo,
                        uint32_t i, _Atomic uint64_t *acc)
{
    double *x = t->grad + g.x0;
    const double *c = g.c + (uint64_t)shift * g.count;
    if (g.prints == NULL) {
        pyad__matvec_reverse(x, c, g.count, adj, lo, (uint64_t)i + 1);
        return PYAD_OK;
    }
    const uint64_t bad = pyad__matvec_reverse_checked(x, c, g.count, adj, lo, (uint64_t)i + 1,
                                                      g.prints + 2 * (uint64_t)shift, acc);
    return bad == UINT64_MAX ? PYAD_OK : pyad__matvec_changed_fail(t, g, bad + shift);
}

/* Output s of a matvec: row i of the matrix times g into x's grads, in k order, as the dot
   records of the same operands add (C[i,k] * g, constants skipped). Where x's slots are
   consecutive, the group's rows below go too, i-1, i-2, ...: the sweep would visit them next
   with their adjoints final (no row feeds another, and no other record lies between them),
   so pyad__matvec_axpys adds them here in that order, rows of a zero adjoint skipped as the
   sweep skips them, over parts of x's columns when large: those below s in its chunk, and
   those at the ends of the chunks before it, in one call (the sweep then skips them: the
   tape notes the group and its lowest row swept). *more is how many records below s in its
   chunk were swept. Fails (before adding anything) when a borrowed matrix changed or the
   adjoints of rows in other chunks find no memory. */
static int sweep_matvec(pyad_tape *t, uint32_t s, double g, uint32_t below, uint32_t *more)
{
    *more = 0;
    const uint32_t h = pyad__group_head(t, s);
    if (h == PYAD_NO_HEAD)
        return PYAD_OK;
    const pyad_matvec mv = pyad__matvec_of(t, h);
    const uint32_t i = (uint32_t)t->rec[s].da;
    if (mv.x0 == PYAD_NONE) {
        const int st = pyad__matvec_check(t, mv, NULL, i, i + 1);
        const double *row = mv.c + (uint64_t)i * mv.count;
        for (uint32_t k = 0; st == PYAD_OK && k < mv.count; k++)
            t->grad[mv.x[k]] += row[k] * g;
        return st;
    }
    while (*more < below && *more < i && group_row(t, s - *more - 1, i - *more - 1, h))
        ++*more;
    if (h == t->swept_head && i >= t->swept_low)
        return PYAD_OK; /* swept with the group's rows above */
    uint32_t lo = i - *more;
    if (lo == 0 || ((s - *more) & PYAD_CHUNK_MASK) != 0) {
        /* the rows of this chunk, counted from lo: row lo + j's adjoint is grad[s - more + j]
           (row i's is g, which sweep_chunk read there). Not from row 0: s may be less than i,
           as a group's later rows may lie in segments of lower slots that were reused. */
        _Atomic uint64_t acc[2 * PYAD_CHUNK];
        return reverse_rows(t, mv, lo, t->grad + (s - *more), 0, *more, acc);
    }
    /* the group goes on in the chunks before: gather the rows' adjoints, adj[j] for row j */
    const size_t need = ((size_t)i + 1) * (sizeof(double) + 2 * sizeof(uint64_t));
    double *adj = pyad__malloc(need);
    if (adj == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory in the reverse sweep (%zu bytes)", need);
    for (uint32_t j = lo; j <= i; j++)
        adj[j] = t->grad[s - (i - j)];
    for (uint32_t pos = t->chunks[s >> PYAD_CHUNK_BITS].pos; lo > 0 && pos-- > 0;) {
        const uint32_t base = t->order[pos] << PYAD_CHUNK_BITS;
        uint32_t q = base + t->chunks[t->order[pos]].fill;
        while (q > base && lo > 0 && group_row(t, q - 1, lo - 1, h))
            adj[--lo] = t->grad[--q];
        if (q > base)
            break; /* the chunk holds more than the group's rows: its first one, or a gap */
    }
    t->swept_head = h;
    t->swept_low = lo;
    const int st = reverse_rows(t, mv, 0, adj, lo, i, (_Atomic uint64_t *)(void *)(adj + i + 1));
    free(adj);
    return st;
}

/* Output s of an n-ary record; *more: how many records below s it swept too (see
   sweep_matvec), of the `below` in its chunk. */
PYAD_NOINLINE int sweep_nary(pyad_tape *t, uint32_t s, double g, uint32_t below, uint32_t *more)
{
    const unsigned op = t->kind[s] & PYAD_OP_MASK;
    *more = 0;
    if (op == PYAD_OP_SOFTMAX) {
        sweep_softmax(t, s, g);
        return PYAD_OK;
    }
    if (op == PYAD_OP_MATVEC)
        return sweep_matvec(t, s, g, below, more);
    const pyad_chunk *ch = &t->chunks[s >> PYAD_CHUNK_BITS];
    double *grad = t->grad;
    const pyad_rec r = t->rec[s];
    for (uint32_t e = r.a, end = r.a + (r.b & ~PYAD_NARY_BIT); e < end; e++)
        grad[ch->side_slot[e]] += ch->side_val[e] * g;
    return PYAD_OK;
}

/* PYAD_OK, or the status of a matvec that could not be swept (sweep_matvec) */
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
            uint32_t more = 0;
            const int st = sweep_nary(t, base + j, g, j, &more);
            if (PYAD_UNLIKELY(st != PYAD_OK))
                return st;
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
    t->swept_head = PYAD_NO_HEAD;
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
