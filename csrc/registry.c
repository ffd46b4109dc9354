/*
 * registry.c - the registry of live tapes: which tape holds each registry index, and the tag
 * (registry index and generation) its handles carry now.
 *
 * Invariants: index 0 is never used, so no handle is 0. A tape is published pointer first,
 * tag second (release), and withdrawn tag first: pyad__registry_find reads only these
 * atomics and returns a tape only under the tag it was published with, so a stale handle
 * never leads to a tape that another thread may be resetting or freeing.
 */
#include <stdatomic.h>

#include "internal.h"

/* Live tapes by registry index, so that an entry point given only handles finds the tape
   (recording calls then pass one or two numbers through cffi instead of four). Index 0 is
   never used, so no handle is 0. Beside each tape, the tag its handles carry now (0: none):
   an entry point checks a handle's tag here before it touches the tape, so that a stale
   handle never reads a tape that another thread may be resetting or freeing. */
static _Atomic(pyad_tape *) registry[PYAD_REGISTRY_SIZE];
static _Atomic uint64_t registry_tags[PYAD_REGISTRY_SIZE];
static _Atomic uint32_t next_index = 1;
/* The last generation used at each registry index. Only the tape holding an index touches
   its counter (the registry's compare-and-swap orders successive holders; the calls on one
   tape are ordered by their caller, pyad.h). */
static uint32_t generations[PYAD_REGISTRY_SIZE];

pyad_tape *pyad__registry_find(uint64_t tag)
{
    const uint32_t index = (uint32_t)tag & (PYAD_REGISTRY_SIZE - 1u);
    /* acquire: the tape this tag was published with (pyad__registry_add stores the pointer
       before the tag) */
    if (PYAD_UNLIKELY(atomic_load_explicit(&registry_tags[index], memory_order_acquire) != tag))
        return NULL;
    return atomic_load_explicit(&registry[index], memory_order_relaxed);
}

/* A new generation: handles of the previous one (of this tape, or of an earlier tape at the
   same registry index) no longer resolve, until the index's 19-bit generation counter comes
   round again: 2^19 resets later. */
void pyad__registry_new_tag(pyad_tape *t)
{
    const uint32_t gen = (generations[t->reg] + 1u) & ((1u << PYAD_GENERATION_BITS) - 1u);
    generations[t->reg] = gen;
    t->tag = (uint64_t)gen << PYAD_REGISTRY_BITS | t->reg;
    atomic_store_explicit(&registry_tags[t->reg], t->tag, memory_order_release);
}

int pyad__registry_add(pyad_tape *t)
{
    for (uint32_t tries = 0; tries < PYAD_REGISTRY_SIZE; tries++) {
        const uint32_t i = atomic_fetch_add(&next_index, 1u) & (PYAD_REGISTRY_SIZE - 1u);
        pyad_tape *expected = NULL;
        if (i != 0 && atomic_compare_exchange_strong(&registry[i], &expected, t)) {
            t->reg = i;
            pyad__registry_new_tag(t);
            return PYAD_OK;
        }
    }
    return PYAD_FULL;
}

void pyad__registry_remove(pyad_tape *t)
{
    if (t->reg != 0) {
        /* the tag first: from here on no lookup returns this tape */
        atomic_store(&registry_tags[t->reg], 0);
        atomic_store(&registry[t->reg], NULL);
    }
}
