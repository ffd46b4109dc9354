/*
 * collect.c - segments, pins and collection: the segment entry points (pyad_tape_segment,
 * pyad_tape_adopt), the pins the frontend holds (pyad_tape_pin_current, pyad_tape_pin,
 * pyad_tape_unpin), and the collection that returns unneeded chunks to the free list.
 *
 * A collection (run by an unpin, see there when) keeps every chunk that is pinned, current,
 * or holds a record that a kept record needs, and keeps `order` oldest first; the other
 * chunks go back on the free list. An unpin that finds no memory for the collection's marks
 * fails and leaves its pin in place: nothing has changed.
 */
#include <stdlib.h>

#include "alloc.h"
#include "internal.h"

static void mark_slot(pyad_tape *t, uint8_t *mark, uint32_t s)
{
    mark[s] = 1;
    t->chunks[s >> PYAD_CHUNK_BITS].needed = 1;
}

/* Every record of a pinned or current chunk may be named by a live handle: those are the
   roots. A record is kept if it is a root or an operand of a kept record; operands are never
   newer than their user, so one pass from the newest record to the oldest finds them all. A
   chunk is kept if any record in it is; the others go back on the free list. */
static void collect(pyad_tape *t, uint8_t *mark)
{
    for (uint32_t k = t->norder; k-- > 0;) {
        const uint32_t c = t->order[k];
        pyad_chunk *ch = &t->chunks[c];
        const int root = ch->pins > 0 || c == t->cur;
        if (!(root || ch->needed))
            continue;
        ch->needed = 1;
        const uint32_t base = c << PYAD_CHUNK_BITS;
        for (uint32_t j = ch->fill; j-- > 0;) {
            const uint32_t s = base + j;
            if (!(root || mark[s]))
                continue;
            const pyad_rec r = t->rec[s];
            if (r.b & PYAD_NARY_BIT) {
                for (uint32_t e = r.a, end = r.a + (r.b & ~PYAD_NARY_BIT); e < end; e++)
                    mark_slot(t, mark, ch->side_slot[e]);
            } else {
                mark_slot(t, mark, r.a);
                mark_slot(t, mark, r.b);
            }
        }
    }
    free(mark);
    uint32_t kept = 0;
    for (uint32_t k = 0; k < t->norder; k++) {
        const uint32_t c = t->order[k];
        pyad_chunk *ch = &t->chunks[c];
        if (ch->needed) {
            ch->needed = 0;
            ch->pos = kept;
            t->order[kept++] = c;
        } else {
            t->nrecords -= ch->fill;
            ch->state = PYAD_CHUNK_FREE;
            ch->fill = 0;
            ch->side_len = 0;
            pyad__release_mat(ch); /* a matrix is large: its memory goes back at once */
            t->free_ids[t->nfree++] = c;
        }
    }
    t->norder = kept;
    t->unpins_since_collect = 0;
    t->live_after_collect = kept;
}

int pyad_tape_segment(pyad_tape *t, int64_t *out)
{
    const int st = pyad__enter_out(t, out);
    if (st != PYAD_OK)
        return st;
    *out = pyad__handle(t, t->cur << PYAD_CHUNK_BITS);
    return PYAD_OK;
}

int pyad_tape_adopt(pyad_tape *t, int64_t h)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    t->adopting = 1;
    if ((uint64_t)h >> PYAD_SLOT_BITS == t->tag &&
        (((uint32_t)h & PYAD_SLOT_MASK) >> PYAD_CHUNK_BITS) == t->cur)
        t->adopted = t->cur;
    return PYAD_OK;
}

int pyad_tape_pin_current(pyad_tape *t, int64_t *out)
{
    const int st = pyad__enter_out(t, out);
    if (st != PYAD_OK)
        return st;
    pyad_chunk *ch = &t->chunks[t->cur];
    if (ch->pins == UINT32_MAX)
        return pyad__fail(t, PYAD_FULL, "too many pins on one segment");
    ch->pins++;
    *out = pyad__handle(t, t->cur << PYAD_CHUNK_BITS);
    return PYAD_OK;
}

int pyad_tape_pin(pyad_tape *t, int64_t h)
{
    uint32_t s = 0;
    int st = pyad__enter(t);
    if (st == PYAD_OK)
        st = pyad__resolve(t, h, &s);
    if (st != PYAD_OK)
        return st;
    pyad_chunk *ch = &t->chunks[s >> PYAD_CHUNK_BITS];
    if (ch->pins == UINT32_MAX)
        return pyad__fail(t, PYAD_FULL, "too many pins on one segment");
    ch->pins++;
    return PYAD_OK;
}

int pyad_tape_unpin(pyad_tape *t, int64_t h)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if ((uint64_t)h >> PYAD_SLOT_BITS != t->tag)
        return PYAD_OK; /* a segment of a generation that reset already dropped */
    const uint32_t c = ((uint32_t)h & PYAD_SLOT_MASK) >> PYAD_CHUNK_BITS;
    if (c >= t->cap_chunks || t->chunks[c].state != PYAD_CHUNK_USED || t->chunks[c].pins == 0)
        return pyad__fail(t, PYAD_MISUSE, "unpin of a segment that is not pinned");
    if (--t->chunks[c].pins > 0)
        return PYAD_OK;
    /* Collect when as many segments were released as survived the last collection: each
       collection's cost is then paid for by the records released since the previous one. */
    const uint32_t unpins = t->unpins_since_collect + 1;
    if (unpins < 4 || unpins < t->live_after_collect) {
        t->unpins_since_collect = unpins;
        return PYAD_OK;
    }
    /* The collection's marks are the only allocation: without them, the unpin fails and
       leaves the pin in place, so that the caller can try again later. */
    uint8_t *mark = pyad__calloc((size_t)t->cap_chunks * PYAD_CHUNK, 1);
    if (mark == NULL) {
        t->chunks[c].pins++;
        return pyad__fail(t, PYAD_NOMEM, "out of memory releasing a segment");
    }
    collect(t, mark);
    return PYAD_OK;
}
