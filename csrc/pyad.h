/*
 * pyad.h - the public C API of pyad's tape: the only public header.
 *
 * A tape is a Wengert list of scalar records. Every entry point returns a status code
 * (PYAD_OK == 0; see status.def) and delivers results through out-pointers, except the
 * push functions on the recording hot path, which return the new record's handle (>= 0) or a
 * negated status (< 0); a push returning -PYAD_SEGMENT succeeded, and pyad_tape_opened gives
 * its handle. A call that fails leaves the tape exactly as it was and stores a message that
 * pyad_tape_errmsg gives to the same thread. Nothing here aborts, exits or prints.
 *
 * Handles are opaque 64-bit values naming one record of one tape generation: a handle from
 * before pyad_tape_reset, or from another tape, is refused with PYAD_STALE.
 *
 * Threads: any thread may use a tape, but calls on one tape must not overlap: the caller
 * orders them (the Python frontend by the GIL, or by the tape's lock where the interpreter
 * has none). Calls on different tapes may run at once. A call given a stale handle reads
 * nothing of the tape its registry index now names, so it may overlap anything; a tape must
 * not be freed while a call is given it or one of its live handles.
 *
 * pyad/_build.py feeds the region between the cdef markers to cffi verbatim, so it must hold
 * only declarations cffi's parser accepts: no macros, no #if, no includes.
 */
#ifndef PYAD_H
#define PYAD_H

#include <stddef.h>
#include <stdint.h>

#define PYAD_VERSION "0.1.0"
#define PYAD_NARY (-1)

enum pyad_status {
#define PYAD_STATUS(NAME, MSG) PYAD_##NAME,
#include "status.def"
#undef PYAD_STATUS
    PYAD_STATUS_COUNT
};

enum pyad_op {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) PYAD_OP_##NAME,
#include "ops.def"
#undef PYAD_OP
    PYAD_OP_COUNT
};

/* Per-op recording entry points, one set per unary and binary row of ops.def (pyad_exp,
   pyad_mul, pyad_mul_vc, pyad_mul_cv, ...): the tape is the operands' tape. They are the hot
   path of the Python frontend; _build.py declares them to cffi from the same rows. */
#define PYAD_DECLARE_0(name)
#define PYAD_DECLARE_PYAD_NARY(name)
#define PYAD_DECLARE_1(name) int64_t pyad_##name(int64_t a);
#define PYAD_DECLARE_2(name)                                                                       \
    int64_t pyad_##name(int64_t a, int64_t b);                                                     \
    int64_t pyad_##name##_vc(int64_t a, double b);                                                 \
    int64_t pyad_##name##_cv(double a, int64_t b);
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) PYAD_DECLARE_##ARITY(name)
#include "ops.def"
#undef PYAD_OP

/* pyad-cdef-begin */
typedef struct pyad_tape pyad_tape;

/* Library and tables (no tape needed). */
const char *pyad_version(void);
int pyad_status_count(void);
const char *pyad_status_name(int status);     /* "OK", "DOMAIN", ...; NULL if unknown */
const char *pyad_strstatus(int status);       /* default message for a status */
int pyad_op_count(void);
const char *pyad_op_name(int op);             /* "add", "log", ...; NULL if unknown */
int pyad_op_arity(int op);                    /* 0, 1, 2 or -1 (n-ary); -2 if unknown */
int pyad_chunk_records(void);                 /* records per segment */

/* Value (and partials) of one op on plain numbers, no tape; b is ignored by unary ops. */
int pyad_eval(int op, double a, double b, double *y, double *da, double *db);

/* Value of an n-ary op on plain numbers: one output, or n for softmax; dot takes its n/2
   pairs interleaved (w_0, x_0, w_1, x_1, ...); MISUSE for matvec (it needs its matrix). */
int pyad_eval_nary(int op, int64_t n, const double *x, double *out);

/* Tape lifetime. */
int pyad_tape_new(pyad_tape **out);
void pyad_tape_free(pyad_tape *t);            /* NULL is a no-op */
int pyad_tape_reset(pyad_tape *t);            /* drop every record; old handles go stale */
/* The message of the calling thread's latest failed call on t ("" if none since t's last
   reset): per thread, so that another thread's failure on t cannot replace it. */
const char *pyad_tape_errmsg(const pyad_tape *t);
/* Cap the memory the tape holds (pyad_tape_nbytes): a call that would grow it past max_bytes
   fails with PYAD_FULL and leaves the tape as it was. 0 (the default) is no cap; a cap below
   what the tape holds already only stops further growth. */
int pyad_tape_set_max_bytes(pyad_tape *t, int64_t max_bytes);
int pyad_tape_len(pyad_tape *t, int64_t *out);      /* records held */
int pyad_tape_nbytes(pyad_tape *t, int64_t *out);   /* memory held, all buffers */
int pyad_tape_last(pyad_tape *t, int64_t *out);     /* newest record; MISUSE if empty */

/* Segments: records are grouped in segments of pyad_chunk_records(). A segment stays while
   the frontend holds a pin on it (a new segment starts with one, see PYAD_SEGMENT), or while a
   record it must keep uses one of its records; other segments are reused. Pins are counted;
   pin and unpin name the segment by the handle of any record in it (unpin of a handle from
   before a reset is a no-op). pyad_tape_segment gives a handle naming the current segment,
   which is pinned once when the tape is created or reset. */
int pyad_tape_segment(pyad_tape *t, int64_t *out);
int pyad_tape_pin(pyad_tape *t, int64_t h);
int pyad_tape_unpin(pyad_tape *t, int64_t h);
/* The segment that the calling thread's latest call on t pinned for it (a push that returned
   PYAD_SEGMENT, or pyad_tape_new / pyad_tape_reset): *out is the handle of that push's
   record (of a multi-record push, its first record in that segment; of new and reset, the
   segment's first slot). MISUSE if that call was on another tape or pinned nothing. Per
   thread, unlike pyad_tape_last, which names the newest record whichever thread pushed it. */
int pyad_tape_opened(pyad_tape *t, int64_t *out);
/* Adopting, for a frontend whose threads share a tape: from the first call of this on, a
   one-record push whose record lands in a segment the frontend has not adopted pins that
   segment for the caller and returns -PYAD_SEGMENT, as a push that opens a segment does
   (pyad_tape_opened names the record); a segment opened, or the first one after a reset, is
   not adopted. This adopts the segment h names if it is the current one, and otherwise
   changes nothing but turning adopting on: pushes into the adopted segment return their
   handles again. The frontend thus knows that a push that returned a handle recorded in the
   segment it adopted last, whose pin it holds (pyad/tape.py). */
int pyad_tape_adopt(pyad_tape *t, int64_t h);
/* One more pin on the current segment, whether or not it holds a record yet; *out names it
   (pyad_tape_unpin releases it). */
int pyad_tape_pin_current(pyad_tape *t, int64_t *out);

/* Recording (hot path): return the new handle, or -status. The op-code forms below do what
   the per-op entry points above do, after checking the operands belong to t. */
int64_t pyad_push_leaf(pyad_tape *t, double v);
int64_t pyad_push_v(pyad_tape *t, int op, int64_t a);
int64_t pyad_push_vv(pyad_tape *t, int op, int64_t a, int64_t b);
int64_t pyad_push_vc(pyad_tape *t, int op, int64_t a, double b);
int64_t pyad_push_cv(pyad_tape *t, int op, double a, int64_t b);
/* n-ary ops. An operand list is handles plus constants: operand j is the record handles[j]
   when handles is not NULL and handles[j] != 0, else the constant consts[j]; either array may
   be NULL when no operand is of its kind. pyad_push_nary records sum (of n >= 0 operands) or
   logsumexp (n >= 1); pyad_push_dot records w_0*x_0 + ... + w_{n-1}*x_{n-1}. */
int64_t pyad_push_nary(pyad_tape *t, int op, int64_t n, const int64_t *handles,
                       const double *consts);
int64_t pyad_push_dot(pyad_tape *t, int64_t n, const int64_t *hw, const double *cw,
                      const int64_t *hx, const double *cx);
/* softmax pushes n >= 1 records, one per output (they may span several segments), and
   writes their handles to out. It stores O(n): its partials follow from its outputs. */
int pyad_push_softmax(pyad_tape *t, int64_t n, const int64_t *handles, const double *consts,
                      int64_t *out);

/* Arrays: many records in one call (csrc/bulk.c, for pyad.array). Each call records n >= 0
   records in order, writes their handles to out[0..n), and returns PYAD_OK, or PYAD_SEGMENT if
   it opened a segment (as pyad_push_softmax: the records may span several segments, each one
   opened pinned once for the caller; pyad_tape_opened names the call's first record in the
   last segment it opened). All or nothing: a call that fails records nothing. n == 0 records
   nothing and returns PYAD_OK (the arrays may then be NULL). */
int pyad_push_leaves(pyad_tape *t, int64_t n, const double *values, int64_t *out);
/* n records of the unary or binary op `op`, element k's operand a being the record ha[k] when
   ha is not NULL, else the constant ca[k]; b likewise from hb/cb (both NULL for a unary op).
   A binary op needs a record operand: (ha, cb) records its _vc form, (ca, hb) its _cv form,
   (ha, hb) the plain one, each record bit for bit what pyad_<op>, pyad_<op>_vc or
   pyad_<op>_cv gives for the same operands. An operand the op refuses, an overflow, or in
   debug mode a non-finite result fails the whole call with the status the one-record push
   gives and its message followed by " at element k", k the first such element; a stale
   handle likewise. *where (where may be NULL) is that k, or -1 for a failure of no element. */
int pyad_push_map(pyad_tape *t, int op, int64_t n, const int64_t *ha, const double *ca,
                  const int64_t *hb, const double *cb, int64_t *out, int64_t *where);
/* nout records of sum or logsumexp (pyad_push_reduce), or of dot (pyad_push_dots), record j
   over the count operands j*count .. (j+1)*count - 1 of the operand lists (as pyad_push_nary
   and pyad_push_dot take them; dot's w_i * x_i from hw/cw and hx/cx), bit for bit what those
   give for the same operands. Debug mode's refusal names the output: " at output j". */
int pyad_push_reduce(pyad_tape *t, int op, int64_t nout, int64_t count, const int64_t *handles,
                     const double *consts, int64_t *out);
int pyad_push_dots(pyad_tape *t, int64_t nout, int64_t count, const int64_t *hw, const double *cw,
                   const int64_t *hx, const double *cx, int64_t *out);

/* y = C x for a constant matrix C (nout rows of count doubles, row-major, copied once into the
   tape) and count records x: nout records, y_j = 0 + C[j,0]*x_0 + C[j,1]*x_1 + ... added left to
   right, bit for bit what pyad_push_dots(t, nout, count, NULL, C, hx_tiled, NULL) gives for the
   same operands (so existing tests comparing against dots keep holding), written to out[0..nout).
   Returns PYAD_OK or PYAD_SEGMENT as the other multi-record pushes; all or nothing. The tape
   holds the matrix once (8 bytes an element) and x's list once, O(count + nout) besides; the
   records' operands and partials (pyad_get_operands) are row j's pairs (x_k, C[j,k]). */
int pyad_push_matvec(pyad_tape *t, int64_t nout, int64_t count, const double *matrix,
                     const int64_t *hx, int64_t *out);
/* pyad_push_matvec without the copy: the tape keeps the address of the caller's matrix and,
   per row, a fingerprint of its bits (16 bytes a row), and reads the matrix when it sweeps
   the records, compiles them or gives their operands. The caller keeps the matrix alive and
   where it is until pyad_tape_released gives back `token` (any number the caller chooses),
   which it does once no record reads the matrix any more. A sweep, compile or
   pyad_get_operands that would read a row changed since the push (a row whose fingerprint
   differs; a sweep skips rows of a zero adjoint, as it does when adding) fails with
   PYAD_CHANGED and changes nothing. Values and gradients are bit for bit pyad_push_matvec's.
   nout == 0 records and borrows nothing. */
int pyad_push_matvec_borrowed(pyad_tape *t, int64_t nout, int64_t count, const double *matrix,
                              const int64_t *hx, int64_t token, int64_t *out);
/* The tokens of borrowed matrices that no record reads any more (its group's records gone:
   collected, or a reset): up to cap of them into tokens[0..*n), each given once. Call again
   while *n == cap. */
int pyad_tape_released(pyad_tape *t, int64_t cap, int64_t *tokens, int64_t *n);

/* Reading and writing records. */
int pyad_get_value(pyad_tape *t, int64_t h, double *out);
int pyad_set_value(pyad_tape *t, int64_t h, double v);   /* leaves only */
int pyad_get_grad(pyad_tape *t, int64_t h, double *out);
int pyad_set_grad(pyad_tape *t, int64_t h, double g);
int pyad_get_op(pyad_tape *t, int64_t h, int *op);
/* The values or grads of n records into out[0..n), and setting n records' grads to one value
   (the functional layer's and arrays' way in and out: no call per element). All handles are
   checked first. */
int pyad_get_values(pyad_tape *t, int64_t n, const int64_t *handles, double *out);
int pyad_get_grads(pyad_tape *t, int64_t n, const int64_t *handles, double *out);
int pyad_set_grads(pyad_tape *t, int64_t n, const int64_t *handles, double g);
/* Operands of a record that are records (constants are skipped): writes up to cap
   (handle, partial) pairs and the total count to *n. STALE for a record nothing kept whose
   operands are gone (its segment stays because another record needs one of its records; its
   own handle still resolves). */
int pyad_get_operands(pyad_tape *t, int64_t h, int64_t cap, int64_t *handles, double *partials,
                      int64_t *n);

/* A caller-computed record (pyad.primitive): value and the partial with respect to each
   operand that is a record (partials[j] is ignored for constants). */
int64_t pyad_push_primitive(pyad_tape *t, int64_t n, const int64_t *handles, const double *consts,
                            double value, const double *partials);

/* Debug mode: while on, a push whose value or partials are NaN or infinite fails with
   PYAD_NONFINITE (and records nothing). Off by default. */
int pyad_tape_set_debug(pyad_tape *t, int on);

/* Records per op (counts has pyad_op_count() entries) and the longest chain of records from
   a leaf (the depth of the deepest record; leaves have depth 0). */
int pyad_tape_stats(pyad_tape *t, int64_t *counts, int64_t *depth);

/* Reverse sweep: add upstream * d(h)/d(node) to the grad of every record h depends on. */
int pyad_backward(pyad_tape *t, int64_t h, double upstream);

/* Value, partials and second partials of one op on plain numbers, no tape: out[0..6) =
   y, da, db, daa, dab, dbb (b and its partials are 0 for unary ops). */
int pyad_eval_second(int op, double a, double b, double *out);

/* The most threads one large product (a matvec of 2^19 multiply-adds or more, up to one
   thread per 2^18: its rows, or x's adjoints in reverse) is cut across (csrc/parallel.c);
   results are the same bits for any number. n >= 1 sets it (at most 8 are used), 0 restores the
   default (PYAD_NUM_THREADS from the environment, else the processors online), -1 only reads; *out
   gets the number then in force. Process-wide. */
int pyad_num_threads(int64_t n, int64_t *out);

/* ---- Programs: record once, replay many times (pyad.compile) ----------------------------
   pyad_program_new copies from a tape the records that the outputs and guards need into an
   immutable program: inputs (leaves of the tape, in the given order), constants and one
   instruction per record. A program does not refer to its tape afterwards; it may be used
   by several threads at once, each with its own work buffer.

   Outputs and guard operands are records (handle != 0) or constants (handle 0: the value
   from the matching consts entry). A guard is a comparison met while recording: operands
   guard_h[2g], guard_h[2g + 1], and guard_kind[g] = comparison (0 <, 1 <=, 2 >, 3 >=) | 4 if
   it held. Fails with PYAD_NOREPLAY if a needed record is a primitive, PYAD_MISUSE for
   inputs that are not distinct leaves of t. */
typedef struct pyad_program pyad_program;
int pyad_program_new(pyad_tape *t, int64_t nin, const int64_t *inputs, int64_t nout,
                     const int64_t *outputs, const double *out_consts, int64_t nguard,
                     const int64_t *guard_h, const double *guard_c, const int *guard_kind,
                     pyad_program **out);
void pyad_program_free(pyad_program *p);                 /* NULL is a no-op */
/* info[0..8) = inputs, outputs, instructions, value slots, constants, n-ary operand
   entries, guards, bytes held. */
int pyad_program_info(const pyad_program *p, int64_t *info);
/* Doubles of work buffer that pyad_program_run needs to evaluate `points` points at once,
   or pyad_program_hvp with `directions` tangent directions (points = 1); -1 if too large. */
int64_t pyad_program_work(const pyad_program *p, int64_t points, int64_t directions);

/* Evaluate k points x[k][nin] in blocks of as many points as the work buffer holds: values
   into values[k][nout] (may be NULL); then, for each of the nseed rows of seeds[nseed][nout],
   one reverse sweep started from seed * outputs, giving grads[k][nseed][nin] (NULL when
   nseed is 0). guards[k] (may be NULL) receives 0 for a point where every guard held, else
   1 + the index of the first guard that did not. Values follow IEEE arithmetic (no domain
   errors); values and gradients are bit for bit those of recording at the same point. */
int pyad_program_run(const pyad_program *p, int64_t k, const double *x, int64_t nseed,
                     const double *seeds, double *values, double *grads, int64_t *guards,
                     double *work, int64_t nwork);
/* Hessian-vector products at one point x[nin] of a program with one output, by
   forward-over-reverse: ndir directions v[ndir][nin] give hv[ndir][nin]; value and grad[nin]
   may be NULL; guards as above (one entry). */
int pyad_program_hvp(const pyad_program *p, const double *x, int64_t ndir, const double *v,
                     double *value, double *grad, double *hv, int64_t *guards, double *work,
                     int64_t nwork);
/* Saved programs (csrc/saved.c, format in docs/FORMAT.md): a portable little-endian form
   of a program with a checksum. pyad_program_save writes it into buf when cap is enough and
   always sets *size to the bytes it needs (buf may be NULL to ask). pyad_program_load checks
   all of buf (checksum, every count, op, form, operand slot, n-ary list, output and guard)
   before it builds a program, and rebuilds every derived field as pyad_program_new does;
   anything else fails with PYAD_BADFORMAT and the reason in msg (msgcap bytes, may be 0). */
int pyad_program_save(const pyad_program *p, void *buf, int64_t cap, int64_t *size);
int pyad_program_load(const void *buf, int64_t len, pyad_program **out, char *msg, int64_t msgcap);
/* ---- Testing allocation failure ------------------------------------------------------
   The n-th allocation this thread makes from now on (n >= 1) fails, once; 0 turns that off.
   Every entry point must then fail with PYAD_NOMEM and leave its tape as it was.
   pyad_debug_alloc_count gives the allocations this thread has attempted. */
int pyad_debug_fail_alloc(int64_t n);
int64_t pyad_debug_alloc_count(void);
/* ---- Testing the threads of large products ----------------------------------------------
   A product goes on threads (pyad_num_threads) from 2 * work multiply-adds, one thread per
   `work`, instead of from 2^19, one per 2^18, so that tests and the fuzzer run small ones on
   threads; 0 restores the default. Process-wide; MISUSE if work < 0. */
int pyad_debug_part_min(int64_t work);
/* Products use vector instructions wider than the build's own where the processor has them
   (AVX2 on x86-64) unless wide is 0; 1 restores that. The results are the same bits either
   way: this lets tests compare the two. Process-wide; MISUSE unless wide is 0 or 1. */
int pyad_debug_wide_vectors(int64_t wide);
/* pyad-cdef-end */

#endif /* PYAD_H */
