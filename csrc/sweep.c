/*
 * sweep.c - the reverse sweep.
 *
 * The sweep accumulates straight into grad: grads already nonzero in the swept range are set
 * aside first and added back at the end (old + new, the order the pure-Python engine uses),
 * so no separate adjoint array is needed. Records are visited newest to oldest, which is a
 * reverse topological order; each does grad[a] += da*g, grad[b] += db*g and rewrites its own
 * grad (undoing the self-write of leaves, unary and constant-operand records). No recursion,
 * no op dispatch except for n-ary records.
 */
#include <stdlib.h>

#include "internal.h"

/* Free the set-aside buffers after a sweep that needed more than this many. */
#define PYAD_SAVE_KEEP 4096u

static int save_grow(pyad_tape *t, size_t need)
{
    size_t want = t->save_cap + t->save_cap / 2 + 64;
    if (want < need)
        want = need;
    uint32_t *slots = realloc(t->save_slot, want * sizeof *slots);
    if (slots == NULL)
        return PYAD_NOMEM;
    t->save_slot = slots;
    double *vals = realloc(t->save_val, want * sizeof *vals);
    if (vals == NULL)
        return PYAD_NOMEM;
    t->save_val = vals;
    t->save_cap = want;
    return PYAD_OK;
}

static void save_release(pyad_tape *t)
{
    if (t->save_cap > PYAD_SAVE_KEEP) {
        free(t->save_slot);
        free(t->save_val);
        t->save_slot = NULL;
        t->save_val = NULL;
        t->save_cap = 0;
    }
}

/* Records of the chunk at order position k that the sweep from `top` visits. */
static uint32_t span(const pyad_tape *t, uint32_t k, uint32_t top_pos, uint32_t top_slot)
{
    return k == top_pos ? (top_slot & PYAD_CHUNK_MASK) + 1 : t->chunks[t->order[k]].fill;
}

static void sweep_nary(pyad_tape *t, uint32_t s, double g)
{
    const pyad_chunk *ch = &t->chunks[s >> PYAD_CHUNK_BITS];
    double *restrict grad = t->grad;
    for (uint32_t e = t->a[s], end = t->a[s] + t->b[s]; e < end; e++)
        grad[ch->side_slot[e]] += ch->side_val[e] * g;
}

static void sweep_chunk(pyad_tape *t, uint32_t c, uint32_t n)
{
    const uint32_t base = c << PYAD_CHUNK_BITS;
    const uint8_t *kind = t->kind + base;
    const uint32_t *ra = t->a + base, *rb = t->b + base;
    const double *da = t->da + base, *db = t->db + base;
    double *grad = t->grad;
    for (uint32_t j = n; j-- > 0;) {
        const double g = grad[base + j];
        if (g == 0.0)
            continue;
        if (PYAD_UNLIKELY(pyad__is_nary(kind[j])))
            sweep_nary(t, base + j, g);
        else {
            grad[ra[j]] += da[j] * g;
            grad[rb[j]] += db[j] * g;
        }
        grad[base + j] = g;
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
    const uint32_t top = t->chunks[r >> PYAD_CHUNK_BITS].pos;

    /* Set aside every nonzero grad in range, so the sweep sees exactly this call's adjoints. */
    size_t nsaved = 0;
    for (uint32_t k = 0; k <= top; k++) {
        const uint32_t c = t->order[k];
        if (!t->chunks[c].dirty)
            continue;
        const uint32_t base = c << PYAD_CHUNK_BITS, n = span(t, k, top, r);
        for (uint32_t j = 0; j < n; j++) {
            const double g = t->grad[base + j];
            if (g == 0.0)
                continue;
            if (nsaved == t->save_cap && save_grow(t, nsaved + 1) != PYAD_OK) {
                for (size_t i = 0; i < nsaved; i++)
                    t->grad[t->save_slot[i]] = t->save_val[i];
                return pyad__fail(t, PYAD_NOMEM, "out of memory before the reverse sweep");
            }
            t->save_slot[nsaved] = base + j;
            t->save_val[nsaved++] = g;
            t->grad[base + j] = 0.0;
        }
    }

    t->grad[r] = upstream;
    for (uint32_t k = top + 1; k-- > 0;) {
        const uint32_t c = t->order[k];
        sweep_chunk(t, c, span(t, k, top, r));
        t->chunks[c].dirty = 1;
    }

    for (size_t i = 0; i < nsaved; i++)
        t->grad[t->save_slot[i]] = t->save_val[i] + t->grad[t->save_slot[i]];
    save_release(t);
    return PYAD_OK;
}
