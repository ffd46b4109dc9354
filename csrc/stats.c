/*
 * stats.c - pyad_tape_stats: how many records of each op the tape holds, and the depth of
 * its deepest record. It only reads the tape; its one allocation (the depths) is freed
 * before it returns.
 */
#include <stdlib.h>

#include "alloc.h"
#include "internal.h"

int pyad_tape_stats(pyad_tape *t, int64_t *counts, int64_t *depth)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (counts == NULL || depth == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    /* depth of a record: 0 for leaves, else 1 + the deepest operand; oldest first. Zeroed:
       a record kept only because its chunk is (nothing uses it) may name operands in a chunk
       reused since, whose slots come later in the order; they count as depth 0. */
    uint32_t *d = pyad__calloc((size_t)t->cap_chunks * PYAD_CHUNK, sizeof *d);
    if (d == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory for the statistics");
    for (int op = 0; op < PYAD_OP_COUNT; op++)
        counts[op] = 0;
    uint32_t deepest = 0;
    for (uint32_t k = 0; k < t->norder; k++) {
        const uint32_t c = t->order[k];
        const pyad_chunk *ch = &t->chunks[c];
        for (uint32_t j = 0; j < ch->fill; j++) {
            const uint32_t s = (c << PYAD_CHUNK_BITS) | j;
            const pyad_rec r = t->rec[s];
            counts[t->kind[s] & PYAD_OP_MASK]++;
            uint32_t below = 0;
            int leaf = 1;
            if (pyad__later_output(t, s)) {
                /* a group's later output: as deep as its first (0 if that is gone) */
                const uint32_t head = pyad__group_head(t, s);
                d[s] = head != PYAD_NO_HEAD ? d[head] : 0;
                continue;
            }
            if (r.b & PYAD_NARY_BIT) {
                for (uint32_t e = r.a, end = r.a + (r.b & ~PYAD_NARY_BIT); e < end; e++)
                    if (ch->side_slot[e] != s) {
                        leaf = 0;
                        below = d[ch->side_slot[e]] > below ? d[ch->side_slot[e]] : below;
                    }
            } else {
                if (r.a != s) {
                    leaf = 0;
                    below = d[r.a];
                }
                if (r.b != s) {
                    leaf = 0;
                    below = d[r.b] > below ? d[r.b] : below;
                }
            }
            d[s] = leaf ? 0 : below + 1;
            deepest = d[s] > deepest ? d[s] : deepest;
        }
    }
    free(d);
    *depth = deepest;
    return PYAD_OK;
}
