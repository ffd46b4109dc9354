/*
 * alloc.h - every allocation pyad's C files make goes through these, so that a test can make
 * the n-th one fail (pyad_debug_fail_alloc) and check that each entry point then returns
 * PYAD_NOMEM and leaves its tape as it was. Memory is released with plain free().
 */
#ifndef PYAD_ALLOC_H
#define PYAD_ALLOC_H

#include <stddef.h>

#include "internal.h"

PYAD_INTERNAL void *pyad__malloc(size_t bytes);
PYAD_INTERNAL void *pyad__calloc(size_t count, size_t size);
PYAD_INTERNAL void *pyad__realloc(void *p, size_t bytes);
/* For memory taken other than by malloc (mmap): counts one allocation and says whether the
   failure hook wants it to fail. */
PYAD_INTERNAL int pyad__alloc_fails(void);

#endif /* PYAD_ALLOC_H */
