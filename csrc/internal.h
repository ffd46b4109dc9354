/*
 * internal.h - the tape's layout and the helpers shared by pyad's C files (prefix pyad__).
 *
 * Records live in struct-of-arrays buffers indexed by a 32-bit slot. Slots come in chunks of
 * PYAD_CHUNK records; chunks are recycled once nothing refers to them, so a chunk's slot
 * numbers say nothing about age: `order` lists the chunks in use oldest first, and a record's
 * operands are always in its own chunk (earlier) or in an older one.
 *
 * Per record (41 bytes): kind (op | form << 6), the 24-byte pyad_rec {a, b (operand slots),
 * da, db (partials)}, val and grad. Forms: unary records and constant-operand records set b
 * to their own slot and keep the constant in db, and leaves point at themselves with zero
 * partials (the sweep's write to grad[self] is overwritten at once), so the reverse sweep is
 * the same two multiply-adds for every record but the n-ary ones. n-ary records keep their
 * operands in their chunk's side arrays: a = offset, b = count (softmax, matvec: nary.c).
 */
#ifndef PYAD_INTERNAL_H
#define PYAD_INTERNAL_H

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "pyad.h"

#if defined(__GNUC__)
#define PYAD_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PYAD_LIKELY(x) __builtin_expect(!!(x), 1)
#define PYAD_INTERNAL __attribute__((visibility("hidden")))
#define PYAD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define PYAD_FALLTHROUGH __attribute__((fallthrough))
/* kept out of a hot loop, whose registers and layout it would change (not `cold`, which
   would optimise it for size): the replay's n-ary cases, the sweep's n-ary records */
#define PYAD_NOINLINE static __attribute__((noinline))
/* the replay's interpreter loops start at a cache line, wherever the code before them ends:
   a change elsewhere in the library once moved them and W5's replay took 4-5% longer with
   replay.c's code unchanged (255-266 us against 269-270), and no longer with this */
#define PYAD_HOT __attribute__((aligned(64)))
#else
#define PYAD_UNLIKELY(x) (x)
#define PYAD_LIKELY(x) (x)
#define PYAD_INTERNAL
#define PYAD_PRINTF(f, a)
#define PYAD_FALLTHROUGH (void)0
#define PYAD_NOINLINE static
#define PYAD_HOT
#endif

/* A handle: bits 0-27 the record's slot, 28-43 the tape's registry index, 44-62 the tape's
   generation (a new one at each reset); together bits 28-62 are the tape's tag. */
#define PYAD_SLOT_BITS 28u
#define PYAD_SLOT_MASK ((1u << PYAD_SLOT_BITS) - 1u)
#define PYAD_REGISTRY_BITS 16u
#define PYAD_REGISTRY_SIZE (1u << PYAD_REGISTRY_BITS)
#define PYAD_GENERATION_BITS 19u

#define PYAD_CHUNK_BITS 10u
#define PYAD_CHUNK (1u << PYAD_CHUNK_BITS)
#define PYAD_CHUNK_MASK (PYAD_CHUNK - 1u)
#define PYAD_MAX_CHUNKS (1u << (PYAD_SLOT_BITS - PYAD_CHUNK_BITS))
#define PYAD_NONE UINT32_MAX /* no chunk */

#define PYAD_OP_BITS 6u
#define PYAD_OP_MASK ((1u << PYAD_OP_BITS) - 1u)
enum pyad_form { PYAD_FORM_PLAIN = 0, PYAD_FORM_VC = 1, PYAD_FORM_CV = 2 };
_Static_assert(PYAD_OP_COUNT <= (1 << PYAD_OP_BITS), "op codes must fit in PYAD_OP_BITS");

enum pyad_chunk_state { PYAD_CHUNK_FREE = 0, PYAD_CHUNK_USED = 1 };

/* A record's operands and partials. n-ary records: a = first side entry, b = entry count
   with PYAD_NARY_BIT set; softmax and matvec also keep da = output index, and db (nary.c). */
typedef struct pyad_rec {
    uint32_t a, b;
    double da, db;
} pyad_rec;
#define PYAD_NARY_BIT 0x80000000u

typedef struct pyad_chunk {
    uint32_t fill;       /* records in use */
    uint32_t pins;       /* pins the frontend holds (one per segment object) */
    uint32_t pos;        /* index in tape->order */
    uint8_t state;       /* enum pyad_chunk_state */
    uint8_t dirty;       /* some grad in it may be nonzero */
    uint8_t needed;      /* scratch for collect (collect.c) */
    uint32_t side_len, side_cap;
    uint32_t side_room;  /* entries the side arrays hold; side_cap (what nbytes counts) catches
                            up once the call that grew them succeeds */
    uint32_t *side_slot; /* n-ary operands: slot, or the record's own slot for a constant */
    double *side_val;    /* ... and its partial (softmax: see nary.c), or the constant's value */
    /* The matrices of the matvec groups whose first output is in this chunk (nary.c), each a
       block of 2 + rows * count doubles; freed when the chunk is (collect.c, reset). mat_cap,
       what nbytes counts, catches up with mat_room once the call that grew it succeeds. */
    double *mat;
    uint64_t mat_len, mat_room, mat_cap;
    size_t mat_held; /* bytes of the buffer mat (arena.c's resize: at least mat_room's) */
    /* How many times the chunk's matrices were released (pyad__release_mat): a borrowed
       matrix noted at another count is no longer read (pyad_tape_released). */
    uint64_t life;
} pyad_chunk;

/* A matrix a matvec group borrows (pyad_push_matvec_borrowed): the caller's token, and the
   chunk of the group's first output with that chunk's life then. */
typedef struct pyad_borrow {
    int64_t token;
    uint32_t chunk;
    uint64_t life;
} pyad_borrow;

struct pyad_tape {
    /* records (struct of arrays, cap_chunks * PYAD_CHUNK slots) */
    uint8_t *kind;
    pyad_rec *rec;       /* what the reverse sweep reads, in one stream */
    double *val, *grad;
    uint32_t cap_chunks;
    size_t slot_bytes[4]; /* bytes held by kind, rec, val and grad, at least their use */
    size_t chunk_bytes[3]; /* bytes held by chunks, order and free_ids, likewise */
    pyad_chunk *chunks;  /* cap_chunks entries */

    uint32_t *order;     /* chunks in use, oldest first */
    uint32_t norder;
    uint32_t *free_ids;  /* chunks to reuse (capacity cap_chunks) */
    uint32_t nfree;
    uint32_t cur;        /* chunk receiving new records */
    uint32_t adopted;    /* cur if the frontend adopted it (pyad_tape_adopt), else PYAD_NONE;
                            always cur until adopting is on */
    uint8_t adopting;    /* pyad_tape_adopt was called: pushes into cur != adopted pin cur */

    uint64_t tag;        /* bits 28-62 of every handle of this generation */
    uint32_t reg;        /* index in the registry of live tapes */
    uint64_t nrecords;
    uint32_t unpins_since_collect, live_after_collect;

    /* the matrices borrowed by live matvec groups, or by groups gone since the frontend
       last asked (pyad_tape_released) */
    pyad_borrow *borrows;
    uint32_t nborrows, borrows_cap;

    /* the sweep's note of the matvec group it swept last (its first output's slot, or
       PYAD_NO_HEAD) and the lowest row it swept, whose rows it skips when it meets them */
    uint32_t swept_head, swept_low;

    /* sweep scratch: the grads of dirty chunks, set aside before a sweep */
    uint32_t *save_slot; /* order positions of the chunks set aside */
    double *save_val;    /* save_cap chunks of grads */
    size_t save_cap;

    int debug;           /* refuse records with a non-finite value or partial */
    int64_t max_bytes;   /* growth past this many bytes (pyad_tape_nbytes) fails; 0: no cap */
    /* Taken by the Python frontend's locked entry points (pyad/_build.py), which it binds
       where the interpreter has no GIL or PYAD_TAPE_LOCKS=1 asks for them; the C library
       itself never takes it. */
    pthread_mutex_t lock;
};

/* status.c */
PYAD_INTERNAL int pyad__fail(pyad_tape *t, int status, const char *fmt, ...) PYAD_PRINTF(3, 4);
/* Adds to the calling thread's message of its latest failure on t (a multi-record push naming
   the element that failed after the message of a one-record push); returns status. */
PYAD_INTERNAL int pyad__fail_more(pyad_tape *t, int status, const char *fmt, ...) PYAD_PRINTF(3, 4);

/* ops.c: each op's arity (ops.def), and its value and partials at plain numbers (the row's
   checks included: the status of a refused operand) */
PYAD_INTERNAL extern const signed char pyad__arity[];
PYAD_INTERNAL int pyad__kernel(int op, double a, double b, double *y, double *da, double *db);
/* Messages about an op's result: a failed domain or overflow check of op at (a, b), returning
   `status`; and debug mode's refusal of a non-finite value or partial. */
PYAD_INTERNAL int pyad__math_error(pyad_tape *t, int status, int op, double a, double b);
PYAD_INTERNAL int pyad__nonfinite(pyad_tape *t, int op, double y, double da, double db);

/* status.c: the calling thread's message of its latest failure, per tape */
PYAD_INTERNAL void pyad__clear_error(const pyad_tape *t);

/* registry.c */
/* The live tape whose tag (bits 28-62 of its handles) is `tag`, or NULL. It reads only the
   registry's atomics, never a tape of another tag, so it is safe while other threads use,
   reset or free other tapes; the tape it returns is the caller's to use (pyad.h). */
PYAD_INTERNAL pyad_tape *pyad__registry_find(uint64_t tag);
/* Takes a free registry index for a new tape and gives it its first tag; FULL if none. */
PYAD_INTERNAL int pyad__registry_add(pyad_tape *t);
/* A new generation (tag) for t: handles of the previous one no longer resolve. */
PYAD_INTERNAL void pyad__registry_new_tag(pyad_tape *t);
/* Withdraws t from the registry, tag first, if it holds an index. */
PYAD_INTERNAL void pyad__registry_remove(pyad_tape *t);

/* arena.c */
/* Grows every per-slot and per-chunk buffer to hold `want` chunks. */
PYAD_INTERNAL int pyad__grow(pyad_tape *t, uint32_t want);
/* Opens chunk c as the current one, pinned once for the calling thread. */
PYAD_INTERNAL void pyad__open_chunk(pyad_tape *t, uint32_t c);
/* The bytes the tape holds, as pyad_tape_nbytes reports them. */
PYAD_INTERNAL size_t pyad__tape_bytes(const pyad_tape *t);
/* FULL, with a message naming the cap, if growing by `extra` bytes would take the tape past
   its max_bytes. */
PYAD_INTERNAL int pyad__within_cap(pyad_tape *t, size_t extra);
/* Room, all or nothing, for nrec records (one chunk at most) with nside side entries: *slot
   is the first's slot, *opened 1 if their segment was opened or pinned for the caller. */
PYAD_INTERNAL int pyad__reserve(pyad_tape *t, uint32_t nrec, uint32_t nside, uint32_t *slot,
                                int *opened);
/* Records pushed one at a time that must not fail half-way: pyad__prepare makes room for
   nrec records with `per` side entries each and `head` more in the chunk of the first (the
   only step that can fail), then each pyad__next_slot gives the next slot, opening prepared
   chunks as needed. */
PYAD_INTERNAL int pyad__prepare(pyad_tape *t, uint32_t nrec, uint32_t per, uint32_t head);
/* pyad__prepare, and room for `mat` more doubles in the mat array of the first's chunk. */
PYAD_INTERNAL int pyad__prepare_mat(pyad_tape *t, uint32_t nrec, uint32_t per, uint32_t head,
                                    uint64_t mat);
PYAD_INTERNAL uint32_t pyad__next_slot(pyad_tape *t, int *opened);
/* Frees chunk ch's matrices (a chunk going back on the free list: they are large). */
PYAD_INTERNAL void pyad__release_mat(pyad_chunk *ch);
/* Frees every buffer of t (for pyad_tape_free, which frees t itself). */
PYAD_INTERNAL void pyad__arena_free(pyad_tape *t);
/* Unmaps the pages kept from freed tapes (arena.c), for tests of growth into fresh pages. */
PYAD_INTERNAL void pyad__arena_drop_kept(void);
/* Ask for transparent huge pages on the whole pages of [p, p + bytes) when that is 2 MiB or
   more (Linux; elsewhere nothing): a large matrix read with 4 KiB pages pays a page walk
   every 512 doubles, and a 10,000 x 1,000 matvec took 6.2 ms against 5.4 with huge pages. */
PYAD_INTERNAL void pyad__advise_huge(void *p, size_t bytes);

/* tape.c */
/* STALE, with a message saying why handle h names no live record of t. */
PYAD_INTERNAL int pyad__stale(pyad_tape *t, int64_t h);
/* For the frontend's locked entry points (pyad/_build.py): the tape's mutex. */
PYAD_INTERNAL void pyad__lock(pyad_tape *t);
PYAD_INTERNAL void pyad__unlock(pyad_tape *t);

/* saved.c: recompute the checksum of a saved program of len bytes after changing it (tests
   use it to reach the structural checks behind the checksum; so may a fuzzer). */
PYAD_INTERNAL int pyad__saved_seal(void *buf, int64_t len);

/* Debug mode's check of a record about to be written (one predictable branch when off). */
static inline int pyad__finite(const pyad_tape *t, double y, double da, double db)
{
    return !t->debug || (isfinite(y) && isfinite(da) && isfinite(db));
}

/* Every entry point that takes a tape but pyad_tape_free starts here. Any thread may use a
   tape; calls on one tape must not overlap (pyad.h). */
static inline int pyad__enter(pyad_tape *t)
{
    if (PYAD_UNLIKELY(t == NULL))
        return PYAD_MISUSE;
    return PYAD_OK;
}

/* pyad__enter, then MISUSE if the caller's out-pointer is NULL. */
static inline int pyad__enter_out(pyad_tape *t, const void *out)
{
    const int st = pyad__enter(t);
    if (st != PYAD_OK)
        return st;
    return out == NULL ? pyad__fail(t, PYAD_MISUSE, "NULL out-pointer") : PYAD_OK;
}

/* The slot a handle names, if it is a live record of this tape generation. */
static inline int pyad__resolve(pyad_tape *t, int64_t h, uint32_t *slot)
{
    const uint64_t u = (uint64_t)h;
    const uint32_t s = (uint32_t)u & PYAD_SLOT_MASK;
    const uint32_t c = s >> PYAD_CHUNK_BITS;
    if (PYAD_LIKELY((u >> PYAD_SLOT_BITS) == t->tag && c < t->cap_chunks &&
                    t->chunks[c].state == PYAD_CHUNK_USED &&
                    (s & PYAD_CHUNK_MASK) < t->chunks[c].fill)) {
        *slot = s;
        return PYAD_OK;
    }
    return pyad__stale(t, h);
}

static inline int64_t pyad__handle(const pyad_tape *t, uint32_t slot)
{
    return (int64_t)((t->tag << PYAD_SLOT_BITS) | slot);
}

/* The tape a handle belongs to, if that tape is alive and in the handle's generation, and
   the record's slot; for the entry points that take handles only. */
static inline int pyad__operand(int64_t h, pyad_tape **tp, uint32_t *slot)
{
    /* The tag is checked in the registry before the tape is touched: a stale handle may name
       the registry index of a tape that another thread is using or freeing right now. */
    pyad_tape *t = pyad__registry_find((uint64_t)h >> PYAD_SLOT_BITS);
    if (PYAD_UNLIKELY(t == NULL))
        return PYAD_STALE;
    *tp = t;
    return pyad__resolve(t, h, slot);
}

/* parallel.c: a large product cut into lanes, each a range of outputs no other lane writes
   (pyad__part_range), done in `blocks` blocks in order, which threads take one by one, the
   caller among them. pyad__run_parts: fn(ctx, lane, lanes, block, blocks) for every block of
   every lane of a product of `work` multiply-adds and `outputs` outputs, per_thread lanes per
   thread; fn(ctx, 0, 1, 0, 1) on the caller when that is small. pyad__threads_for: the
   threads `work` is worth (pyad_debug_part_min lowers the work per thread for tests). */
typedef void (*pyad_part_fn)(void *ctx, uint32_t lane, uint32_t lanes, uint32_t block,
                             uint32_t blocks);
PYAD_INTERNAL void pyad__run_parts(pyad_part_fn fn, void *ctx, uint64_t work, uint64_t outputs,
                                   uint32_t per_thread, uint32_t blocks);
PYAD_INTERNAL uint32_t pyad__threads_for(uint64_t work);
/* Part `part` of `parts` of n outputs: [*lo, *hi). */
static inline void pyad__part_range(uint64_t n, uint32_t part, uint32_t parts, uint64_t *lo,
                                    uint64_t *hi)
{
    *lo = n * part / parts;
    *hi = n * (part + 1) / parts;
}

/* The matvec's loops of csrc/narymath.h in parts. pyad__matvec_forward: y = C x for `rows`
   rows, copying C into `copy` as it goes unless that is NULL (pyad__matvec_rows_copying),
   else fingerprinting its rows into `prints` unless that is NULL (pyad__matvec_rows_printing;
   parts of rows). pyad__matvec_reverse: pyad__matvec_axpys over all `count` columns (parts
   of columns). pyad__matvec_changed: the first row j in jlo .. jhi whose fingerprint
   (pyad__row_print) is no longer prints[2j], [2j+1], rows whose g[j] is 0 skipped when g is
   not NULL (the reverse skips them: a change there changes no gradient); UINT64_MAX if
   none (parts of rows). */
PYAD_INTERNAL void pyad__matvec_forward(const double *c, uint64_t count, const double *x,
                                        uint64_t rows, double *y, double *copy, uint64_t *prints);
/* pyad__matvec_reverse over a borrowed matrix, fingerprinting the rows it adds (those whose
   g[j] is not 0) as it reads them, with acc (2 (jhi - jlo) entries) for scratch; returns the
   first such row whose fingerprint is not prints[2j], [2j+1], UINT64_MAX if none. The adding
   is done either way: the caller undoes it when a row changed. */
PYAD_INTERNAL uint64_t pyad__matvec_reverse_checked(double *a, const double *c, uint64_t count,
                                                    const double *g, uint64_t jlo, uint64_t jhi,
                                                    const uint64_t *prints, _Atomic uint64_t *acc);
PYAD_INTERNAL uint64_t pyad__matvec_changed(const double *c, uint64_t count, const uint64_t *prints,
                                            const double *g, uint64_t jlo, uint64_t jhi);
PYAD_INTERNAL void pyad__matvec_reverse(double *a, const double *c, uint64_t count, const double *g,
                                        uint64_t jlo, uint64_t jhi);

/* nary.c: groups, the n-ary ops of several records (softmax, matvec; see nary.c for their
   layout). The slot of output 0 of the group that record s is an output of (PYAD_NO_HEAD if
   that is gone: then no live record uses s), and the (operand, partial) pairs of s as
   pyad_get_operands gives them: writes the first cap, returns their number (-1: no head; -2:
   its row of a borrowed matrix changed, the tape's message saying so; -3: an operand is gone,
   pyad__older_record).
   pyad__group_orphan: STALE, saying why, for an entry point given such an output's handle h. */
#define PYAD_NO_HEAD UINT32_MAX
PYAD_INTERNAL uint32_t pyad__group_head(const pyad_tape *t, uint32_t s);
PYAD_INTERNAL int pyad__group_orphan(pyad_tape *t, int64_t h);
PYAD_INTERNAL int64_t pyad__group_operands(pyad_tape *t, uint32_t s, int64_t cap, int64_t *handles,
                                           double *partials);

/* Is slot o a record the tape holds, created before record s? An operand of a record that a
   kept one needs always is; an operand of a record in a chunk kept for another record's sake
   may be gone, its slot even holding a newer record by now (collect.c): a reused chunk joins
   `order` at its end, so it is newer than s. Asked wherever a record's operands are followed
   from a handle the caller gave: a group's link to its head, compiling, pyad_get_operands. */
static inline int pyad__older_record(const pyad_tape *t, uint32_t o, uint32_t s)
{
    const uint32_t c = o >> PYAD_CHUNK_BITS, cs = s >> PYAD_CHUNK_BITS;
    if (c >= t->cap_chunks || t->chunks[c].state != PYAD_CHUNK_USED ||
        (o & PYAD_CHUNK_MASK) >= t->chunks[c].fill)
        return 0;
    return c == cs ? o < s : t->chunks[c].pos < t->chunks[cs].pos;
}

/* Is record s a group's output other than its first (found through pyad__group_head)? */
static inline int pyad__later_output(const pyad_tape *t, uint32_t s)
{
    const unsigned op = t->kind[s] & PYAD_OP_MASK;
    return (op == PYAD_OP_SOFTMAX || op == PYAD_OP_MATVEC) && t->rec[s].da != 0.0;
}

/* A matvec group, read from its first output `head` (nary.c has the layout): rows outputs
   over count records x[0..count), matrix c (rows x count, row-major); x0 is x[0] when the
   slots are consecutive (x[k] == x0 + k), else PYAD_NONE. A borrowed matrix (c the caller's)
   has its rows' fingerprints in prints[0 .. 2 rows) (pyad__row_print); a copied one NULL. */
typedef struct pyad_matvec {
    const double *c;
    const uint32_t *x;
    const uint64_t *prints;
    uint32_t rows, count, x0;
} pyad_matvec;
static inline pyad_matvec pyad__matvec_of(const pyad_tape *t, uint32_t head)
{
    const pyad_chunk *ch = &t->chunks[head >> PYAD_CHUNK_BITS];
    const pyad_rec r = t->rec[head];
    const double *block = ch->mat + (uint64_t)r.db;
    pyad_matvec g = {block + 2,
                     ch->side_slot + r.a,
                     NULL,
                     (uint32_t)fabs(block[0]),
                     r.b & ~PYAD_NARY_BIT,
                     block[1] < 0.0 ? PYAD_NONE : (uint32_t)block[1]};
    if (block[0] < 0.0) { /* borrowed: block[2] holds the matrix's address */
        memcpy(&g.c, block + 2, sizeof g.c);
        g.prints = (const uint64_t *)(const void *)(block + 3);
    }
    return g;
}
/* OK if rows jlo .. jhi of g's matrix are as recorded (rows whose adj[j] is 0 skipped when
   adj is not NULL), else CHANGED naming the first that is not; a copied matrix is OK. */
PYAD_INTERNAL int pyad__matvec_check(pyad_tape *t, pyad_matvec g, const double *adj, uint64_t jlo,
                                     uint64_t jhi);
/* CHANGED, with the message naming row `row` of g's matrix as changed since it was recorded. */
PYAD_INTERNAL int pyad__matvec_changed_fail(pyad_tape *t, pyad_matvec g, uint64_t row);

/* nary.c: n-ary records, shared by the one-record pushes (nary.c) and the array ones
   (bulk.c). An operand list: operand j is the record h[j * stride] when h is not NULL and
   that is not 0, else the constant c[j * stride] (stride 2 for pyad_eval_nary's dot). */
typedef struct pyad_operands {
    const int64_t *h;
    const double *c;
    int64_t stride;
} pyad_operands;
/* MISUSE for a bad operand count, DOMAIN for none where the op needs one (`what` names it). */
PYAD_INTERNAL int pyad__check_count(pyad_tape *t, int64_t n, int nonempty, const char *what);
/* STALE or MISUSE, with a message, unless each of the n operands is a live record of t or a
   constant. The steps below take lists that passed this check. */
PYAD_INTERNAL int pyad__check_operands(pyad_tape *t, int64_t n, pyad_operands l);
/* A sum or logsumexp record over n operands, in two steps so that nothing is reserved
   before it is sure to be written: its value (gathering the operands' values into v[0..n);
   r = y and the m, s of its partials; NONFINITE in debug mode), then, once reserved, the
   record at `slot` with its operand list from side entry `first` of its chunk. The same for
   dot, its pairs' values interleaved into wx[0..2n). */
PYAD_INTERNAL int pyad__reduce_value(pyad_tape *t, int op, pyad_operands l, int64_t n, double *v,
                                     double r[3]);
PYAD_INTERNAL void pyad__reduce_put(pyad_tape *t, uint32_t slot, uint32_t first, int op,
                                    pyad_operands l, const double *v, int64_t n, const double r[3]);
PYAD_INTERNAL int pyad__dot_value(pyad_tape *t, pyad_operands w, pyad_operands x, int64_t n,
                                  double *wx, double *y);
PYAD_INTERNAL void pyad__dot_put(pyad_tape *t, uint32_t slot, uint32_t first, pyad_operands w,
                                 pyad_operands x, const double *wx, int64_t n, double y);

/* Records reserved by pyad__reserve are written, then published here. */
static inline void pyad__commit(pyad_tape *t, uint32_t nrec, uint32_t nside)
{
    pyad_chunk *ch = &t->chunks[t->cur];
    ch->fill += nrec;
    ch->side_len += nside;
    t->nrecords += nrec;
}

#endif /* PYAD_INTERNAL_H */
