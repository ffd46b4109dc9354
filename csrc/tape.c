/*
 * tape.c - tape lifetime, chunk management (growth, pins, reuse), and recording of leaves,
 * unary and binary records.
 *
 * Memory is an arena of chunks: growing never moves a record's slot, reset rewinds without
 * freeing, and chunks nothing refers to any more go back on a free list (collect below).
 * Every push validates, computes, reserves (the only step that can run out of memory), then
 * writes and commits: a push that fails has changed nothing.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* mremap */
#endif
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "alloc.h"
#include "internal.h"
#include "opfuncs.h"

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
    /* acquire: the tape this tag was published with (register_tape stores the pointer
       before the tag) */
    if (PYAD_UNLIKELY(atomic_load_explicit(&registry_tags[index], memory_order_acquire) != tag))
        return NULL;
    return atomic_load_explicit(&registry[index], memory_order_relaxed);
}

/* A new generation: handles of the previous one (of this tape, or of an earlier tape at the
   same registry index) no longer resolve, until the index's 19-bit generation counter comes
   round again: 2^19 resets later. */
static void new_tag(pyad_tape *t)
{
    const uint32_t gen = (generations[t->reg] + 1u) & ((1u << PYAD_GENERATION_BITS) - 1u);
    generations[t->reg] = gen;
    t->tag = (uint64_t)gen << PYAD_REGISTRY_BITS | t->reg;
    atomic_store_explicit(&registry_tags[t->reg], t->tag, memory_order_release);
}

static int register_tape(pyad_tape *t)
{
    for (uint32_t tries = 0; tries < PYAD_REGISTRY_SIZE; tries++) {
        const uint32_t i = atomic_fetch_add(&next_index, 1u) & (PYAD_REGISTRY_SIZE - 1u);
        pyad_tape *expected = NULL;
        if (i != 0 && atomic_compare_exchange_strong(&registry[i], &expected, t)) {
            t->reg = i;
            new_tag(t);
            return PYAD_OK;
        }
    }
    return PYAD_FULL;
}

void pyad__lock(pyad_tape *t)
{
    pthread_mutex_lock(&t->lock);
}

void pyad__unlock(pyad_tape *t)
{
    pthread_mutex_unlock(&t->lock);
}

/* The segment that this thread's latest call on a tape opened (see pyad_tape_opened): under
   concurrent use, pyad_tape_last may already name another thread's record. */
static _Thread_local struct {
    const pyad_tape *tape;
    int64_t handle;
} opened_here;

int pyad__stale(pyad_tape *t, int64_t h)
{
    if ((uint64_t)h >> PYAD_SLOT_BITS != t->tag)
        return pyad__fail(t, PYAD_STALE,
                          "handle %#llx is from another tape or from before its last reset",
                          (unsigned long long)h);
    return pyad__fail(t, PYAD_STALE, "handle %#llx names no live record of this tape",
                      (unsigned long long)h);
}

int pyad__nonfinite(pyad_tape *t, int op, double y, double da, double db)
{
    return pyad__fail(t, PYAD_NONFINITE, "%s produced value %.17g with partials %.17g, %.17g",
                      pyad_op_name(op), y, da, db);
}

int pyad_tape_set_debug(pyad_tape *t, int on)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    t->debug = on != 0;
    return PYAD_OK;
}

int pyad__math_error(pyad_tape *t, int status, int op, double a, double b)
{
    const char *name = pyad_op_name(op);
    if (pyad__arity[op] == 1)
        return pyad__fail(t, status, "%s: %s(%.17g)", pyad_strstatus(status), name, a);
    return pyad__fail(t, status, "%s: %s(%.17g, %.17g)", pyad_strstatus(status), name, a, b);
}

/* Resize a per-slot buffer from `old` to `want` bytes. Large buffers are mapped pages grown
   with mremap, which moves page tables instead of copying: a tape grows in small steps, and
   realloc's copies (glibc moves its mmap threshold up after large frees, so realloc may copy)
   cost several times the pushes themselves. */
#if defined(__linux__) && defined(MREMAP_MAYMOVE)
#define PYAD_MAP_MIN ((size_t)1 << 20)

static size_t page_round(size_t bytes)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + page - 1) / page * page;
}

static void *resize(void *p, size_t old, size_t want)
{
    if (want < PYAD_MAP_MIN)
        return pyad__realloc(p, want);
    if (pyad__alloc_fails())
        return NULL;
    if (old >= PYAD_MAP_MIN) {
        void *q = mremap(p, page_round(old), page_round(want), MREMAP_MAYMOVE);
        return q == MAP_FAILED ? NULL : q;
    }
    void *q = mmap(NULL, page_round(want), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (q == MAP_FAILED)
        return NULL;
    if (old > 0)
        memcpy(q, p, old);
    free(p);
    return q;
}

static void release(void *p, size_t bytes)
{
    if (bytes >= PYAD_MAP_MIN)
        munmap(p, page_round(bytes));
    else
        free(p);
}
#else
static void *resize(void *p, size_t old, size_t want)
{
    (void)old;
    return pyad__realloc(p, want);
}

static void release(void *p, size_t bytes)
{
    (void)bytes;
    free(p);
}
#endif

/* Grow every per-slot and per-chunk buffer to hold `want` chunks. On failure the buffers
   that did grow keep their new size; cap_chunks only moves once all have. */
static int grow(pyad_tape *t, uint32_t want)
{
    const size_t n = (size_t)want * PYAD_CHUNK;
#define GROW_SLOTS(field, index)                                                              \
    do {                                                                                      \
        void *p_ = resize(t->field, t->slot_bytes[index], n * sizeof *t->field);              \
        if (p_ == NULL)                                                                       \
            return pyad__fail(t, PYAD_NOMEM, "out of memory growing the tape to %zu records", \
                              n);                                                             \
        t->field = p_;                                                                        \
        t->slot_bytes[index] = n * sizeof *t->field;                                          \
    } while (0)
#define GROW(field, count)                                                                    \
    do {                                                                                      \
        void *p_ = pyad__realloc(t->field, (count) * sizeof *t->field);                       \
        if (p_ == NULL)                                                                       \
            return pyad__fail(t, PYAD_NOMEM, "out of memory growing the tape to %zu records", \
                              n);                                                             \
        t->field = p_;                                                                        \
    } while (0)
    GROW_SLOTS(kind, 0);
    GROW_SLOTS(rec, 1);
    GROW_SLOTS(val, 2);
    GROW_SLOTS(grad, 3);
    GROW(order, (size_t)want);
    GROW(free_ids, (size_t)want);
    GROW(chunks, (size_t)want);
#undef GROW
#undef GROW_SLOTS
    memset(t->chunks + t->cap_chunks, 0, (size_t)(want - t->cap_chunks) * sizeof *t->chunks);
    t->cap_chunks = want;
    return PYAD_OK;
}

/* Bytes pyad_tape_nbytes reports, and what one more chunk adds to them. */
#define PER_SLOT_BYTES (sizeof(uint8_t) + sizeof(pyad_rec) + 2 * sizeof(double))
#define PER_CHUNK_BYTES                                                                       \
    (PYAD_CHUNK * PER_SLOT_BYTES + sizeof(pyad_chunk) + 2 * sizeof(uint32_t))
#define SIDE_ENTRY_BYTES (sizeof(uint32_t) + sizeof(double))

static size_t tape_bytes(const pyad_tape *t)
{
    size_t n = sizeof *t + (size_t)t->cap_chunks * PER_CHUNK_BYTES;
    for (uint32_t c = 0; c < t->cap_chunks; c++)
        n += (size_t)t->chunks[c].side_cap * SIDE_ENTRY_BYTES;
    return n + t->save_cap * (sizeof *t->save_slot + PYAD_CHUNK * sizeof *t->save_val);
}

int pyad__within_cap(pyad_tape *t, size_t extra)
{
    if (PYAD_LIKELY(t->max_bytes == 0 || extra == 0))
        return PYAD_OK;
    const size_t now = tape_bytes(t), cap = (size_t)t->max_bytes;
    if (extra <= cap && now <= cap - extra)
        return PYAD_OK;
    return pyad__fail(t, PYAD_FULL,
                      "the tape reached its memory cap (max_bytes = %lld): it holds %zu bytes "
                      "and needs %zu more",
                      (long long)t->max_bytes, now, extra);
}

/* Side arrays of ch that hold `total` entries (the first side_len kept). The room is not
   counted in nbytes (side_cap) until the caller publishes it, so that a call failing after
   this step leaves nbytes as it was; unpublished room is simply reused later. */
static int side_room(pyad_tape *t, pyad_chunk *ch, uint64_t total)
{
    if (total <= ch->side_room)
        return PYAD_OK;
    if (total > UINT32_MAX)
        return pyad__fail(t, PYAD_FULL, "too many operands in one segment");
    uint64_t want = (uint64_t)ch->side_room + ch->side_room / 2;
    if (want < total)
        want = total;
    if (want > UINT32_MAX)
        want = UINT32_MAX;
    uint32_t *slots = pyad__realloc(ch->side_slot, (size_t)want * sizeof *slots);
    if (slots == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory for n-ary operands");
    ch->side_slot = slots;
    double *vals = pyad__realloc(ch->side_val, (size_t)want * sizeof *vals);
    if (vals == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory for n-ary operands");
    ch->side_val = vals;
    ch->side_room = (uint32_t)want;
    return PYAD_OK;
}

/* Room for `extra` more side entries in chunk ch, counted in nbytes. */
static int ensure_side(pyad_tape *t, pyad_chunk *ch, uint32_t extra)
{
    if (extra <= ch->side_cap - ch->side_len)
        return PYAD_OK;
    int st = side_room(t, ch, (uint64_t)ch->side_len + extra);
    if (st == PYAD_OK)
        st = pyad__within_cap(t, (size_t)(ch->side_room - ch->side_cap) * SIDE_ENTRY_BYTES);
    if (st == PYAD_OK)
        ch->side_cap = ch->side_room;
    return st;
}

/* Opens chunk c as the current one, pinned once for the calling thread (pyad_tape_opened);
   with adopting on, not adopted. */
static void open_chunk(pyad_tape *t, uint32_t c)
{
    pyad_chunk *ch = &t->chunks[c];
    ch->state = PYAD_CHUNK_USED;
    ch->fill = 0;
    ch->side_len = 0;
    ch->pins = 1;
    ch->dirty = 0;
    ch->pos = t->norder;
    t->order[t->norder++] = c;
    t->cur = c;
    t->adopted = t->adopting ? PYAD_NONE : c;
    opened_here.tape = t;
    opened_here.handle = pyad__handle(t, c << PYAD_CHUNK_BITS);
}

/* At least `need` chunks on the free list (growing the buffers if it must). */
static int ensure_free(pyad_tape *t, uint32_t need)
{
    while (t->nfree < need) {
        if (t->cap_chunks == PYAD_MAX_CHUNKS)
            return pyad__fail(t, PYAD_FULL, "tape is full (%u records)",
                              PYAD_MAX_CHUNKS * PYAD_CHUNK);
        /* Small steps keep the unused tail under 1/8 of the tape; realloc moves large blocks
           by remapping pages, so frequent growth copies nothing. */
        const uint64_t least = (uint64_t)t->cap_chunks + need - t->nfree;
        uint64_t want = (uint64_t)t->cap_chunks + t->cap_chunks / 8 + 1;
        if (want < least)
            want = least;
        if (t->max_bytes > 0 && want > least) { /* a smaller step rather than pass the cap */
            const size_t now = tape_bytes(t), cap = (size_t)t->max_bytes;
            const uint64_t fits = t->cap_chunks + (now < cap ? (cap - now) / PER_CHUNK_BYTES : 0);
            want = fits > want ? want : fits > least ? fits : least;
        }
        if (want > PYAD_MAX_CHUNKS)
            want = PYAD_MAX_CHUNKS;
        const uint32_t old_cap = t->cap_chunks;
        int st = pyad__within_cap(t, (size_t)(want - old_cap) * PER_CHUNK_BYTES);
        if (st == PYAD_OK)
            st = grow(t, (uint32_t)want);
        if (st != PYAD_OK)
            return st;
        /* New chunks go under the chunks already free, lowest last: the lowest is used
           first, and chunks prepared by pyad__prepare stay on top. */
        const uint32_t added = t->cap_chunks - old_cap;
        memmove(t->free_ids + added, t->free_ids, (size_t)t->nfree * sizeof *t->free_ids);
        for (uint32_t k = 0; k < added; k++)
            t->free_ids[k] = t->cap_chunks - 1 - k;
        t->nfree += added;
    }
    return PYAD_OK;
}

/* Undo ensure_free's growth: the chunks past old_cap leave the free list (which they joined
   at its bottom) and give back their side arrays. The buffers keep their larger size; the
   next growth reuses it. */
static void shrink_back(pyad_tape *t, uint32_t old_cap, uint32_t old_nfree)
{
    const uint32_t added = t->cap_chunks - old_cap;
    if (added == 0)
        return;
    for (uint32_t c = old_cap; c < t->cap_chunks; c++) {
        free(t->chunks[c].side_slot);
        free(t->chunks[c].side_val);
        memset(&t->chunks[c], 0, sizeof t->chunks[c]);
    }
    memmove(t->free_ids, t->free_ids + added, (size_t)old_nfree * sizeof *t->free_ids);
    t->nfree = old_nfree;
    t->cap_chunks = old_cap;
}

/* Room, all or nothing, for records that fill the current chunk with `cur_extra` more side
   entries and then open the next `need` chunks of the free list, with `side_full` side
   entries in each but the last and `side_last` in the last, plus `first_extra` in the first.
   On failure the tape, nbytes included, is as it was. */
static int room_ahead(pyad_tape *t, uint32_t cur_extra, uint32_t need, uint64_t side_full,
                      uint64_t side_last, uint64_t first_extra)
{
    const uint32_t old_cap = t->cap_chunks, old_nfree = t->nfree;
    int st = ensure_free(t, need);
    size_t extra = 0;
    /* pass 0 makes the room and adds up its bytes; pass 1 counts it in nbytes */
    for (int pass = 0; pass < 2 && st == PYAD_OK; pass++) {
        for (uint32_t k = 0; k <= need && st == PYAD_OK; k++) {
            const int is_cur = k == need;
            pyad_chunk *ch = &t->chunks[is_cur ? t->cur : t->free_ids[t->nfree - 1 - k]];
            const uint64_t total = is_cur ? (uint64_t)ch->side_len + cur_extra
                                          : (k + 1 < need ? side_full : side_last) +
                                                (k == 0 ? first_extra : 0);
            if (is_cur && cur_extra <= ch->side_cap - ch->side_len)
                continue;
            if (pass == 1) {
                ch->side_cap = ch->side_room;
            } else if ((st = side_room(t, ch, total)) == PYAD_OK) {
                extra += (size_t)(ch->side_room - ch->side_cap) * SIDE_ENTRY_BYTES;
            }
        }
        if (pass == 0 && st == PYAD_OK)
            st = pyad__within_cap(t, extra);
    }
    if (st != PYAD_OK)
        shrink_back(t, old_cap, old_nfree);
    return st;
}

int pyad__reserve(pyad_tape *t, uint32_t nrec, uint32_t nside, uint32_t *slot, int *opened)
{
    pyad_chunk *cur = &t->chunks[t->cur];
    int st;
    if (PYAD_LIKELY(nrec <= PYAD_CHUNK - cur->fill)) {
        /* Not adopted yet (adopting on): the record's segment is pinned for this caller, as
           if the push had opened it. Checked first, so that a failure has changed nothing. */
        const int pin = t->cur != t->adopted;
        if (PYAD_UNLIKELY(pin) && cur->pins == UINT32_MAX)
            return pyad__fail(t, PYAD_FULL, "too many pins on one segment");
        if (PYAD_UNLIKELY(nside > 0) && (st = ensure_side(t, cur, nside)) != PYAD_OK)
            return st;
        *slot = (t->cur << PYAD_CHUNK_BITS) | cur->fill;
        *opened = pin;
        if (PYAD_UNLIKELY(pin)) {
            cur->pins++;
            opened_here.tape = t;
            opened_here.handle = pyad__handle(t, *slot);
        }
        return PYAD_OK;
    }
    if (nrec > PYAD_CHUNK)
        return pyad__fail(t, PYAD_MISUSE, "%u records do not fit in one segment", nrec);
    if ((st = room_ahead(t, 0, 1, 0, nside, 0)) != PYAD_OK)
        return st;
    const uint32_t c = t->free_ids[--t->nfree];
    open_chunk(t, c);
    *slot = c << PYAD_CHUNK_BITS;
    *opened = 1;
    return PYAD_OK;
}

int pyad__prepare(pyad_tape *t, uint32_t nrec, uint32_t per, uint32_t head)
{
    uint32_t room = PYAD_CHUNK - t->chunks[t->cur].fill;
    if (room > nrec)
        room = nrec;
    const uint64_t here = (uint64_t)room * per + (room > 0 ? head : 0);
    if (here > UINT32_MAX)
        return pyad__fail(t, PYAD_FULL, "too many operands in one segment");
    const uint32_t rest = nrec - room, need = (rest + PYAD_CHUNK - 1) / PYAD_CHUNK;
    const uint64_t last = need > 0 ? (uint64_t)(rest - (need - 1) * PYAD_CHUNK) * per : 0;
    return room_ahead(t, (uint32_t)here, need, (uint64_t)PYAD_CHUNK * per, last,
                      room > 0 ? 0 : head);
}

uint32_t pyad__next_slot(pyad_tape *t, int *opened)
{
    if (t->chunks[t->cur].fill == PYAD_CHUNK) {
        open_chunk(t, t->free_ids[--t->nfree]);
        *opened = 1;
    }
    return (t->cur << PYAD_CHUNK_BITS) | t->chunks[t->cur].fill;
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
    if (grow(t, 1) != PYAD_OK) {
        pyad_tape_free(t);
        return PYAD_NOMEM;
    }
    if (register_tape(t) != PYAD_OK) {
        pyad_tape_free(t);
        return PYAD_FULL;
    }
    open_chunk(t, 0);
    *out = t;
    return PYAD_OK;
}

void pyad_tape_free(pyad_tape *t)
{
    if (t == NULL)
        return;
    if (t->reg != 0) {
        /* the tag first: from here on no lookup returns this tape */
        atomic_store(&registry_tags[t->reg], 0);
        atomic_store(&registry[t->reg], NULL);
    }
    pyad__clear_error(t);
    if (opened_here.tape == t)
        opened_here.tape = NULL;
    pthread_mutex_destroy(&t->lock);
    for (uint32_t c = 0; c < t->cap_chunks; c++) {
        free(t->chunks[c].side_slot);
        free(t->chunks[c].side_val);
    }
    release(t->kind, t->slot_bytes[0]);
    release(t->rec, t->slot_bytes[1]);
    release(t->val, t->slot_bytes[2]);
    release(t->grad, t->slot_bytes[3]);
    free(t->order);
    free(t->free_ids);
    free(t->chunks);
    free(t->save_slot);
    free(t->save_val);
    free(t);
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
    for (uint32_t c = t->cap_chunks; c-- > 1;) {
        t->chunks[c].state = PYAD_CHUNK_FREE;
        t->chunks[c].pins = 0;
        t->free_ids[t->nfree++] = c;
    }
    t->norder = 0;
    new_tag(t); /* before open_chunk, which notes the new segment's handle */
    open_chunk(t, 0);
    t->nrecords = 0;
    t->unpins_since_collect = 0;
    t->live_after_collect = 0;
    pyad__clear_error(t);
    return PYAD_OK;
}

int pyad_tape_len(pyad_tape *t, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    *out = (int64_t)t->nrecords;
    return PYAD_OK;
}

int pyad_tape_nbytes(pyad_tape *t, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    const size_t n = tape_bytes(t);
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

/* ---- recycling chunks ---------------------------------------------------------------- */

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
            t->free_ids[t->nfree++] = c;
        }
    }
    t->norder = kept;
    t->unpins_since_collect = 0;
    t->live_after_collect = kept;
}

int pyad_tape_segment(pyad_tape *t, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    *out = pyad__handle(t, t->cur << PYAD_CHUNK_BITS);
    return PYAD_OK;
}

int pyad_tape_opened(pyad_tape *t, int64_t *out)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    /* the tag too: t may sit where a tape freed since was */
    if (out == NULL || opened_here.tape != t ||
        (uint64_t)opened_here.handle >> PYAD_SLOT_BITS != t->tag)
        return pyad__fail(t, PYAD_MISUSE, "this thread opened no segment of this tape");
    *out = opened_here.handle;
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
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
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

/* ---- statistics ---------------------------------------------------------------------- */

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
            if ((t->kind[s] & PYAD_OP_MASK) == PYAD_OP_SOFTMAX && r.da != 0.0) {
                /* a softmax's later output: as deep as its first (0 if that is gone) */
                const uint32_t head = pyad__softmax_head(t, s);
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

/* ---- reading and writing records ------------------------------------------------------ */

#define RESOLVE_OR_RETURN(t, h, s)                                                            \
    do {                                                                                      \
        int st_ = pyad__enter(t);                                                             \
        if (st_ == PYAD_OK)                                                                   \
            st_ = pyad__resolve(t, h, &(s));                                                  \
        if (st_ != PYAD_OK)                                                                   \
            return st_;                                                                       \
    } while (0)

int pyad_get_value(pyad_tape *t, int64_t h, double *out)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    if (out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    *out = t->val[s];
    return PYAD_OK;
}

int pyad_set_value(pyad_tape *t, int64_t h, double v)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    if ((t->kind[s] & PYAD_OP_MASK) != PYAD_OP_LEAF)
        return pyad__fail(t, PYAD_NOTLEAF,
                          "cannot set the value of a computed %s node: only inputs (leaves) "
                          "can be assigned",
                          pyad_op_name(t->kind[s] & PYAD_OP_MASK));
    t->val[s] = v;
    return PYAD_OK;
}

int pyad_get_grad(pyad_tape *t, int64_t h, double *out)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    if (out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    *out = t->grad[s];
    return PYAD_OK;
}

int pyad_set_grad(pyad_tape *t, int64_t h, double g)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    t->grad[s] = g;
    if (g != 0.0)
        t->chunks[s >> PYAD_CHUNK_BITS].dirty = 1;
    return PYAD_OK;
}

static int check_handles(pyad_tape *t, int64_t n, const int64_t *handles)
{
    int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    if (n < 0 || (n > 0 && handles == NULL))
        return pyad__fail(t, PYAD_MISUSE, "bad handle array (n = %lld)", (long long)n);
    uint32_t s;
    for (int64_t i = 0; i < n; i++)
        if ((st = pyad__resolve(t, handles[i], &s)) != PYAD_OK)
            return st;
    return PYAD_OK;
}

int pyad_get_grads(pyad_tape *t, int64_t n, const int64_t *handles, double *out)
{
    int st = check_handles(t, n, handles);
    if (st != PYAD_OK)
        return st;
    if (n > 0 && out == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    for (int64_t i = 0; i < n; i++)
        out[i] = t->grad[(uint32_t)handles[i] & PYAD_SLOT_MASK];
    return PYAD_OK;
}

int pyad_set_grads(pyad_tape *t, int64_t n, const int64_t *handles, double g)
{
    int st = check_handles(t, n, handles);
    if (st != PYAD_OK)
        return st;
    for (int64_t i = 0; i < n; i++) {
        const uint32_t s = (uint32_t)handles[i] & PYAD_SLOT_MASK;
        t->grad[s] = g;
        if (g != 0.0)
            t->chunks[s >> PYAD_CHUNK_BITS].dirty = 1;
    }
    return PYAD_OK;
}

int pyad_get_op(pyad_tape *t, int64_t h, int *op)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    if (op == NULL)
        return pyad__fail(t, PYAD_MISUSE, "NULL out-pointer");
    *op = t->kind[s] & PYAD_OP_MASK;
    return PYAD_OK;
}

int pyad_get_operands(pyad_tape *t, int64_t h, int64_t cap, int64_t *handles,
                      double *partials, int64_t *n)
{
    uint32_t s = 0;
    RESOLVE_OR_RETURN(t, h, s);
    if (n == NULL || cap < 0 || (cap > 0 && (handles == NULL || partials == NULL)))
        return pyad__fail(t, PYAD_MISUSE, "bad output buffers");
    const unsigned op = t->kind[s] & PYAD_OP_MASK;
    int64_t k = 0;
#define EMIT(slot, partial)                                                                   \
    do {                                                                                      \
        if (k < cap) {                                                                        \
            handles[k] = pyad__handle(t, slot);                                               \
            partials[k] = (partial);                                                          \
        }                                                                                     \
        k++;                                                                                  \
    } while (0)
    const pyad_rec r = t->rec[s];
    if (op == PYAD_OP_SOFTMAX) {
        if ((k = pyad__softmax_operands(t, s, cap, handles, partials)) < 0)
            return pyad__softmax_orphan(t, h);
    } else if (r.b & PYAD_NARY_BIT) {
        const pyad_chunk *ch = &t->chunks[s >> PYAD_CHUNK_BITS];
        for (uint32_t e = r.a, end = r.a + (r.b & ~PYAD_NARY_BIT); e < end; e++)
            if (ch->side_slot[e] != s)
                EMIT(ch->side_slot[e], ch->side_val[e]);
    } else if (op != PYAD_OP_LEAF) {
        EMIT(r.a, r.da);
        if (r.b != s)
            EMIT(r.b, r.db);
    }
#undef EMIT
    *n = k;
    return PYAD_OK;
}
