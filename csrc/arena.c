/*
 * arena.c - a tape's memory: the per-slot buffers and the chunks they are cut into, the free
 * list of chunks, the side arrays of n-ary records, the bytes pyad_tape_nbytes reports and
 * max_bytes caps, and the room a push reserves for its records.
 *
 * Memory is an arena of chunks: growing never moves a record's slot (chunk c holds slots
 * c << PYAD_CHUNK_BITS onwards), reset rewinds without freeing, and chunks nothing refers to
 * any more go back on the free list (collect.c). Reserving room (pyad__reserve,
 * pyad__prepare) is the only step of a push that can run out of memory or pass max_bytes,
 * and it is all or nothing: on failure the tape, nbytes included, is as it was.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* mremap */
#endif
#include <stdlib.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "alloc.h"
#include "internal.h"

/* The segment that this thread's latest call on a tape opened (see pyad_tape_opened): under
   concurrent use, pyad_tape_last may already name another thread's record. */
static _Thread_local struct {
    const pyad_tape *tape;
    int64_t handle;
} opened_here;

/* What a buffer given to resize and release is for: kind, rec, val, grad (slot_bytes'
   indices) or a chunk's matrices. */
enum kept_use { KEPT_MATRIX = 4 };

/* realloc to hold `want` bytes where `*held` do not (then *held = want). A buffer that holds
   enough already is still a point where the allocation-failure hook may fail the growth, so
   that tests fail each buffer's growth whatever an earlier failed attempt left grown. */
static void *grow_small(void *p, size_t *held, size_t want)
{
    if (want <= *held)
        return pyad__alloc_fails() ? NULL : p;
    void *q = pyad__realloc(p, want);
    if (q != NULL)
        *held = want;
    return q;
}

/* Resize a per-slot buffer of `*held` bytes to hold `want`, setting *held to what it holds
   then. Buffers past 64 KiB are mapped pages grown with mremap, which moves page tables
   instead of copying: a tape grows in small steps, and realloc's copies (glibc moves its
   mmap threshold up after large frees, so realloc may copy) cost several times the pushes
   themselves (with the threshold at 1 MiB, a fresh tape's values and adjoints of 120,000
   records stayed below it and took 12-20 ns per record of an array push in copies, against
   4 at 64 KiB: make bench's fresh-tape line). A buffer never shrinks: after a failed growth
   the next one reuses what it holds. */
#if defined(__linux__) && defined(MREMAP_MAYMOVE)
#define PYAD_MAP_MIN ((size_t)1 << 16)
#define PYAD_HUGE_MIN ((size_t)2 << 20)

/* The pages of freed tapes' buffers, kept for the next tapes to grow into. A program that
   records a fresh tape per call (pyad.value_and_grad does) would otherwise have the kernel
   fault in and zero every page of every call's tape: W1 written with arrays at n = 20,000
   took 4.3 ms per value_and_grad with fresh pages and 1.6 ms on a reused tape, and a
   logistic regression's 80 MB matrix 46 ms per push where its copy takes 8. At most
   KEPT_MAPS buffers and KEPT_BYTES in all are kept; the rest goes back to the system. Each
   is kept with the use it had (a per-slot buffer or a matrix, enum kept_use), and given to
   the same use: a per-slot buffer is taken when it first outgrows malloc, long before it is
   full, so it takes the largest kept one of its use and a tape recording what the freed one
   recorded grows into pages faulted in already (what a buffer holds beyond its use is not
   counted in the tape's bytes); a matrix knows its size and takes the smallest that fits. */
#define KEPT_MAPS 8
#define KEPT_BYTES ((size_t)128 << 20)
static struct {
    void *p;
    size_t bytes;
    int use;
} kept[KEPT_MAPS];
static size_t kept_bytes;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

/* A kept buffer of `use` holding `want` bytes (its size in *bytes), or NULL. */
static void *take_kept(int use, size_t want, size_t *bytes)
{
    void *p = NULL;
    pthread_mutex_lock(&kept_lock);
    int best = -1;
    for (int i = 0; i < KEPT_MAPS; i++)
        if (kept[i].p != NULL && kept[i].use == use && kept[i].bytes >= want &&
            (best < 0 || (use == KEPT_MATRIX ? kept[i].bytes < kept[best].bytes
                                             : kept[i].bytes > kept[best].bytes)))
            best = i;
    if (best >= 0) {
        p = kept[best].p;
        *bytes = kept[best].bytes;
        kept[best].p = NULL;
        kept_bytes -= *bytes;
    }
    pthread_mutex_unlock(&kept_lock);
    return p;
}

/* Keep a freed buffer for a later tape if there is room; 0 if not. */
static int keep(int use, void *p, size_t bytes)
{
    int done = 0;
    pthread_mutex_lock(&kept_lock);
    for (int i = 0; i < KEPT_MAPS && !done && kept_bytes + bytes <= KEPT_BYTES; i++)
        if (kept[i].p == NULL) {
            kept[i].p = p;
            kept[i].bytes = bytes;
            kept[i].use = use;
            kept_bytes += bytes;
            done = 1;
        }
    pthread_mutex_unlock(&kept_lock);
    return done;
}

static size_t page_round(size_t bytes)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + page - 1) / page * page;
}

void pyad__advise_huge(void *p, size_t bytes)
{
#if defined(MADV_HUGEPAGE)
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), start = (uintptr_t)p;
    const uintptr_t lo = (start + page - 1) / page * page, hi = (start + bytes) / page * page;
    if (p != NULL && bytes >= PYAD_HUGE_MIN && hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* advice: failing changes nothing */
#else
    (void)p;
    (void)bytes;
#endif
}

static void *resize(int use, void *p, size_t *held, size_t want)
{
    const size_t old = *held;
    if (want <= old || want < PYAD_MAP_MIN)
        return grow_small(p, held, want);
    if (pyad__alloc_fails())
        return NULL;
    if (old >= PYAD_MAP_MIN) {
        void *q = mremap(p, page_round(old), page_round(want), MREMAP_MAYMOVE);
        if (q == MAP_FAILED)
            return NULL;
        *held = page_round(want);
        pyad__advise_huge(q, *held);
        return q;
    }
    size_t bytes = 0;
    void *q = take_kept(use, page_round(want), &bytes);
    if (q == NULL) {
        bytes = page_round(want);
        q = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q == MAP_FAILED)
            return NULL;
        pyad__advise_huge(q, bytes);
    }
    if (old > 0)
        memcpy(q, p, old);
    free(p);
    *held = bytes;
    return q;
}

void pyad__arena_drop_kept(void)
{
    pthread_mutex_lock(&kept_lock);
    for (int i = 0; i < KEPT_MAPS; i++)
        if (kept[i].p != NULL) {
            munmap(kept[i].p, kept[i].bytes);
            kept[i].p = NULL;
        }
    kept_bytes = 0;
    pthread_mutex_unlock(&kept_lock);
}

static void release(int use, void *p, size_t bytes)
{
    if (bytes < PYAD_MAP_MIN)
        free(p);
    else if (!keep(use, p, bytes))
        munmap(p, bytes);
}
#else
static void *resize(int use, void *p, size_t *held, size_t want)
{
    (void)use;
    return grow_small(p, held, want);
}

void pyad__arena_drop_kept(void)
{
}

void pyad__advise_huge(void *p, size_t bytes)
{
    (void)p;
    (void)bytes;
}

static void release(int use, void *p, size_t bytes)
{
    (void)use;
    (void)bytes;
    free(p);
}
#endif

/* Grow every per-slot and per-chunk buffer to hold `want` chunks. On failure the buffers
   that did grow keep their new size; cap_chunks only moves once all have. */
int pyad__grow(pyad_tape *t, uint32_t want)
{
    const size_t n = (size_t)want * PYAD_CHUNK;
#define GROW_SLOTS(field, index)                                                                   \
    do {                                                                                           \
        void *p_ = resize(index, t->field, &t->slot_bytes[index], n * sizeof *t->field);           \
        if (p_ == NULL)                                                                            \
            return pyad__fail(t, PYAD_NOMEM, "out of memory growing the tape to %zu records", n);  \
        t->field = p_;                                                                             \
    } while (0)
#define GROW(field, index)                                                                         \
    do {                                                                                           \
        void *p_ = grow_small(t->field, &t->chunk_bytes[index], (size_t)want * sizeof *t->field);  \
        if (p_ == NULL)                                                                            \
            return pyad__fail(t, PYAD_NOMEM, "out of memory growing the tape to %zu records", n);  \
        t->field = p_;                                                                             \
    } while (0)
    GROW_SLOTS(kind, 0);
    GROW_SLOTS(rec, 1);
    GROW_SLOTS(val, 2);
    GROW_SLOTS(grad, 3);
    GROW(chunks, 0);
    GROW(order, 1);
    GROW(free_ids, 2);
#undef GROW
#undef GROW_SLOTS
    memset(t->chunks + t->cap_chunks, 0, (size_t)(want - t->cap_chunks) * sizeof *t->chunks);
    t->cap_chunks = want;
    return PYAD_OK;
}

/* Bytes pyad_tape_nbytes reports, and what one more chunk adds to them. */
#define PER_SLOT_BYTES (sizeof(uint8_t) + sizeof(pyad_rec) + 2 * sizeof(double))
#define PER_CHUNK_BYTES (PYAD_CHUNK * PER_SLOT_BYTES + sizeof(pyad_chunk) + 2 * sizeof(uint32_t))
#define SIDE_ENTRY_BYTES (sizeof(uint32_t) + sizeof(double))

size_t pyad__tape_bytes(const pyad_tape *t)
{
    size_t n = sizeof *t + (size_t)t->cap_chunks * PER_CHUNK_BYTES;
    for (uint32_t c = 0; c < t->cap_chunks; c++)
        n += (size_t)t->chunks[c].side_cap * SIDE_ENTRY_BYTES +
             (size_t)t->chunks[c].mat_cap * sizeof(double);
    return n + t->save_cap * (sizeof *t->save_slot + PYAD_CHUNK * sizeof *t->save_val);
}

int pyad__within_cap(pyad_tape *t, size_t extra)
{
    if (PYAD_LIKELY(t->max_bytes == 0 || extra == 0))
        return PYAD_OK;
    const size_t now = pyad__tape_bytes(t), cap = (size_t)t->max_bytes;
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

/* The mat array of ch holding `total` doubles, as side_room: not counted (mat_cap) until the
   caller publishes it. It grows by half at least, but to the exact size for a large matrix in
   a chunk that holds none (the usual case), so that a big matrix costs its own size. */
static int mat_room(pyad_tape *t, pyad_chunk *ch, uint64_t total)
{
    if (total <= ch->mat_room)
        return PYAD_OK;
    /* offsets are kept in doubles (nary.c): exact below 2^53 */
    if (total > ((uint64_t)1 << 52) || total > SIZE_MAX / sizeof(double))
        return pyad__fail(t, PYAD_FULL, "too many matrix elements in one segment");
    uint64_t want = ch->mat_room + ch->mat_room / 2;
    if (want < total)
        want = total;
    /* through resize: a matrix as large as the data is mapped pages, kept when freed for
       the next tape's matrix (a one-shot gradient records its matrix afresh at every call) */
    double *m = resize(KEPT_MATRIX, ch->mat, &ch->mat_held, (size_t)want * sizeof *m);
    if (m == NULL)
        return pyad__fail(t, PYAD_NOMEM, "out of memory for a matrix of %llu elements",
                          (unsigned long long)(total - ch->mat_len));
    ch->mat = m;
    ch->mat_room = want;
    return PYAD_OK;
}

void pyad__release_mat(pyad_chunk *ch)
{
    release(KEPT_MATRIX, ch->mat, ch->mat_held);
    ch->mat_held = 0;
    ch->mat = NULL;
    ch->mat_len = ch->mat_room = ch->mat_cap = 0;
    ch->life++; /* the matrices it borrowed are no longer read (pyad_tape_released) */
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
void pyad__open_chunk(pyad_tape *t, uint32_t c)
{
    pyad_chunk *ch = &t->chunks[c];
    ch->state = PYAD_CHUNK_USED;
    ch->fill = 0;
    ch->side_len = 0;
    ch->mat_len = 0;
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
        /* Small steps keep the unused tail under 1/8 of the tape; resize grows the large
           per-slot buffers by remapping pages, so frequent growth does not copy them. */
        const uint64_t least = (uint64_t)t->cap_chunks + need - t->nfree;
        uint64_t want = (uint64_t)t->cap_chunks + t->cap_chunks / 8 + 1;
        if (want < least)
            want = least;
        if (t->max_bytes > 0 && want > least) { /* a smaller step rather than pass the cap */
            const size_t now = pyad__tape_bytes(t), cap = (size_t)t->max_bytes;
            const uint64_t fits = t->cap_chunks + (now < cap ? (cap - now) / PER_CHUNK_BYTES : 0);
            want = fits > want ? want : fits > least ? fits : least;
        }
        if (want > PYAD_MAX_CHUNKS)
            want = PYAD_MAX_CHUNKS;
        const uint32_t old_cap = t->cap_chunks;
        int st = pyad__within_cap(t, (size_t)(want - old_cap) * PER_CHUNK_BYTES);
        if (st == PYAD_OK)
            st = pyad__grow(t, (uint32_t)want);
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
        pyad__release_mat(&t->chunks[c]);
        memset(&t->chunks[c], 0, sizeof t->chunks[c]);
    }
    memmove(t->free_ids, t->free_ids + added, (size_t)old_nfree * sizeof *t->free_ids);
    t->nfree = old_nfree;
    t->cap_chunks = old_cap;
}

/* Room, all or nothing, for records that fill the current chunk with `cur_extra` more side
   entries and then open the next `need` chunks of the free list, with `side_full` side
   entries in each but the last and `side_last` in the last, plus `first_extra` in the first;
   and `mat` doubles of matrix in the chunk of the first record (the current one if
   `mat_here`, else the first opened). On failure the tape, nbytes included, is as it was. */
static int room_ahead(pyad_tape *t, uint32_t cur_extra, uint32_t need, uint64_t side_full,
                      uint64_t side_last, uint64_t first_extra, uint64_t mat, int mat_here)
{
    const uint32_t old_cap = t->cap_chunks, old_nfree = t->nfree;
    int st = ensure_free(t, need);
    size_t extra = 0;
    /* pass 0 makes the room and adds up its bytes; pass 1 counts it in nbytes */
    for (int pass = 0; pass < 2 && st == PYAD_OK; pass++) {
        for (uint32_t k = 0; k <= need && st == PYAD_OK; k++) {
            const int is_cur = k == need;
            pyad_chunk *ch = &t->chunks[is_cur ? t->cur : t->free_ids[t->nfree - 1 - k]];
            if (mat > 0 && (mat_here ? is_cur : k == 0)) {
                const uint64_t want = (is_cur ? ch->mat_len : 0) + mat;
                if (pass == 1) {
                    ch->mat_cap = ch->mat_room;
                } else if (want > ch->mat_cap && (st = mat_room(t, ch, want)) == PYAD_OK) {
                    extra += (size_t)(ch->mat_room - ch->mat_cap) * sizeof(double);
                }
                if (st != PYAD_OK)
                    break;
            }
            const uint64_t total =
                is_cur ? (uint64_t)ch->side_len + cur_extra
                       : (k + 1 < need ? side_full : side_last) + (k == 0 ? first_extra : 0);
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
    if ((st = room_ahead(t, 0, 1, 0, nside, 0, 0, 0)) != PYAD_OK)
        return st;
    const uint32_t c = t->free_ids[--t->nfree];
    pyad__open_chunk(t, c);
    *slot = c << PYAD_CHUNK_BITS;
    *opened = 1;
    return PYAD_OK;
}

int pyad__prepare(pyad_tape *t, uint32_t nrec, uint32_t per, uint32_t head)
{
    return pyad__prepare_mat(t, nrec, per, head, 0);
}

int pyad__prepare_mat(pyad_tape *t, uint32_t nrec, uint32_t per, uint32_t head, uint64_t mat)
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
                      room > 0 ? 0 : head, mat, room > 0);
}

uint32_t pyad__next_slot(pyad_tape *t, int *opened)
{
    if (t->chunks[t->cur].fill == PYAD_CHUNK) {
        pyad__open_chunk(t, t->free_ids[--t->nfree]);
        *opened = 1;
    }
    return (t->cur << PYAD_CHUNK_BITS) | t->chunks[t->cur].fill;
}

/* Frees every buffer of t (not t itself) and drops this thread's note of a segment t
   opened (pyad_tape_opened). */
void pyad__arena_free(pyad_tape *t)
{
    if (opened_here.tape == t)
        opened_here.tape = NULL;
    for (uint32_t c = 0; c < t->cap_chunks; c++) {
        free(t->chunks[c].side_slot);
        free(t->chunks[c].side_val);
        pyad__release_mat(&t->chunks[c]);
    }
    release(0, t->kind, t->slot_bytes[0]);
    release(1, t->rec, t->slot_bytes[1]);
    release(2, t->val, t->slot_bytes[2]);
    release(3, t->grad, t->slot_bytes[3]);
    free(t->order);
    free(t->free_ids);
    free(t->chunks);
    free(t->save_slot);
    free(t->save_val);
    free(t->borrows);
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
