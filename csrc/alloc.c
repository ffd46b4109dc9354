/*
 * alloc.c - allocation with a failure hook for tests (see alloc.h).
 *
 * The hook is per thread, so a test making allocations fail cannot disturb another thread's
 * tape, and it costs one thread-local decrement per allocation: pyad allocates per segment
 * and per n-ary push, never per record.
 */
#include <stdlib.h>

#include "alloc.h"

static _Thread_local int64_t countdown; /* 0: off; else allocations left until one fails */
static _Thread_local int64_t made;      /* allocations attempted by this thread */

int pyad__alloc_fails(void)
{
    made++;
    if (countdown > 0 && --countdown == 0)
        return 1;
    return 0;
}

void *pyad__malloc(size_t bytes)
{
    return pyad__alloc_fails() ? NULL : malloc(bytes);
}

void *pyad__calloc(size_t count, size_t size)
{
    return pyad__alloc_fails() ? NULL : calloc(count, size);
}

void *pyad__realloc(void *p, size_t bytes)
{
    return pyad__alloc_fails() ? NULL : realloc(p, bytes);
}

int pyad_debug_fail_alloc(int64_t n)
{
    if (n < 0)
        return PYAD_MISUSE;
    countdown = n;
    return PYAD_OK;
}

int64_t pyad_debug_alloc_count(void)
{
    return made;
}
