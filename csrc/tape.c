/*
 * tape.c - a tape's lifetime and settings: making, freeing and resetting a tape, debug mode
 * and the memory cap, its length, bytes and last record, its mutex, and the message for a
 * stale handle. The rest of a tape lives beside it: the registry of live tapes in
 * registry.c, its memory in arena.c, segments, pins and collection in collect.c, reading and
 * writing records in access.c, statistics in stats.c; recording is record.c's and nary.c's.
 *
 * A tape is in the registry, with one chunk open, from pyad_tape_new until pyad_tape_free;
 * a reset starts a new generation (handles of the old one no longer resolve) and rewinds
 * the tape to its first chunk without freeing any memory.
 */
#include <stdlib.h>

#include "alloc.h"
#include "internal.h"

void pyad__lock(pyad_tape *t)
{
    pthread_mutex_lock(&t->lock);
}

void pyad__unlock(pyad_tape *t)
{
    pthread_mutex_unlock(&t->lock);
}

int pyad__stale(pyad_tape *t, int64_t h)
{
    if ((uint64_t)h >> PYAD_SLOT_BITS != t->tag)
        return pyad__fail(t, PYAD_STALE,
                          "handle %#llx is from another tape or from before its last reset",
                          (unsigned long long)h);
    return pyad__fail(t, PYAD_STALE, "handle %#llx names no live record of this tape",
                      (unsigned long long)h);
}

int pyad_tape_new(pyad_tape **out)
{
    if (out == NULL)
        return PYAD_MISUSE;
    *out = NULL;
    pyad_tape *t = pyad__calloc(1, sizeof *t);
    if (t == NULL)
        return PYAD_NOMEM;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return PYAD_NOMEM;
    }
    if (pyad__grow(t, 1) != PYAD_OK) {
        pyad_tape_free(t);
        return PYAD_NOMEM;
    }
    if (pyad__registry_add(t) != PYAD_OK) {
        pyad_tape_free(t);
        return PYAD_FULL;
    }
    pyad__open_chunk(t, 0);
    *out = t;
    return PYAD_OK;
}

void pyad_tape_free(pyad_tape *t)
{
    if (t == NULL)
        return;
    pyad__registry_remove(t);
    pyad__clear_error(t);
    pthread_mutex_destroy(&t->lock);
    pyad__arena_free(t);
    free(t);
}

int pyad_tape_set_debug(pyad_tape *t, int on)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    t->debug = on != 0;
    return PYAD_OK;
}

int pyad_tape_set_max_bytes(pyad_tape *t, int64_t max_bytes)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (max_bytes < 0)
        return pyad__fail(t, PYAD_MISUSE, "max_bytes must be >= 0 (0: no cap), not %lld",
                          (long long)max_bytes);
    t->max_bytes = max_bytes;
    return PYAD_OK;
}

int pyad_tape_reset(pyad_tape *t)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    t->nfree = 0;
    for (uint32_t c = t->cap_chunks; c-- > 0;)
        pyad__release_mat(&t->chunks[c]); /* matrices are large: not kept for reuse */
    for (uint32_t c = t->cap_chunks; c-- > 1;) {
        t->chunks[c].state = PYAD_CHUNK_FREE;
        t->chunks[c].pins = 0;
        t->free_ids[t->nfree++] = c;
    }
    t->norder = 0;
    /* the new tag before pyad__open_chunk, which notes the new segment's handle */
    pyad__registry_new_tag(t);
    pyad__open_chunk(t, 0);
    t->nrecords = 0;
    t->unpins_since_collect = 0;
    t->live_after_collect = 0;
    pyad__clear_error(t);
    return PYAD_OK;
}

int pyad_tape_len(pyad_tape *t, int64_t *out)
{
    const int st = pyad__enter_out(t, out);
    if (st != PYAD_OK)
        return st;
    *out = (int64_t)t->nrecords;
    return PYAD_OK;
}

int pyad_tape_nbytes(pyad_tape *t, int64_t *out)
{
    const int st = pyad__enter_out(t, out);
    if (st != PYAD_OK)
        return st;
    const size_t n = pyad__tape_bytes(t);
    *out = (int64_t)n;
    return PYAD_OK;
}

int pyad_tape_last(pyad_tape *t, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    const pyad_chunk *ch = &t->chunks[t->cur];
    if (out == NULL || ch->fill == 0)
        return pyad__fail(t, PYAD_MISUSE, "the tape holds no record");
    *out = pyad__handle(t, (t->cur << PYAD_CHUNK_BITS) | (ch->fill - 1));
    return PYAD_OK;
}
