/*
 * fuzz_api.c - libFuzzer harness for pyad's public C API (pyad.h), run under ASan + UBSan.
 *
 * The input is a program: each command byte picks an API call, the bytes after it its
 * arguments (doubles from a table of awkward values or raw bits, handles from those the
 * calls returned or raw 64-bit garbage, counts, op codes valid or not). Two tapes and two
 * programs are live at a time. Besides the sanitizers, the harness checks the contract
 * itself and traps on a violation:
 *   - every call returns a known status (pushes: a handle or -status);
 *   - a failed call leaves both tapes' lengths and last handles as they were, and a failed
 *     backward leaves the grads it could have touched as they were;
 *   - backward from a record whose operands are distinct leaves adds partial * upstream to
 *     each of them, and upstream to the record itself;
 *   - a record's operands are live records, and the op counts of tape_stats add up to the
 *     tape's length;
 *   - a program built from a tape whose leaves were never edited, run at the recorded point,
 *     gives the tape's values bit for bit, the tape's gradients, and guards that all hold;
 *     hvp agrees with run on value and gradient;
 *   - run and hvp refuse a work buffer one double too small.
 * The array pushes (pyad_push_leaves, _map, _reduce, _dots) are checked the same way, and
 * their first records against pyad_eval and pyad_eval_nary at the same operands.
 * Pins are held as the Python frontend holds them: one per segment opened (the frontend's
 * segment objects), dropped by a release that keeps only the segments of a few chosen
 * handles (the Vars still alive) and the current one. Releases interleaved with n-ary
 * pushes (a softmax across a segment boundary: bulk can stop a few records short of one)
 * then a compile of the kept handles is how the frontend compiles after segment reuse.
 * Everything is freed at the end of each input, so LeakSanitizer sees leaks. Matvecs of 64
 * multiply-adds or more run on three threads (pyad_debug_part_min), as large ones do, with
 * the products' portable loops for inputs of odd length and their AVX2 clones (where the
 * processor has AVX2) for the others (pyad_debug_wide_vectors). Some
 * matvecs borrow their matrix (pyad_push_matvec_borrowed) from buffers the harness keeps to
 * the end of the input and flips bits of (do_mutate): what then reads a changed row fails
 * with CHANGED, which the checks of failed calls above cover.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pyad.h"

enum {
    POOL = 64,
    MAXN = 1100,
    MAXREC = 12000,
    MAXPROG = 2,
    MAXWORK = 1 << 20,
    MAXHELD = 32,
    MAXBORROWED = 16
};

/* ---- the input, read as a stream; past its end every read is 0 ------------------------- */

typedef struct reader {
    const uint8_t *p;
    size_t n, at;
} reader;

static uint8_t u8(reader *r)
{
    return r->at < r->n ? r->p[r->at++] : 0;
}

static uint64_t u64(reader *r)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | u8(r);
    return v;
}

static double f64(reader *r)
{
    static const double awkward[] = {0.0,
                                     -0.0,
                                     1.0,
                                     -1.0,
                                     2.0,
                                     0.5,
                                     -2.5,
                                     3.0,
                                     1e-300,
                                     4.9406564584124654e-324,
                                     2.2250738585072014e-308,
                                     1.7976931348623157e308,
                                     1e308,
                                     710.0,
                                     -745.0,
                                     1e10,
                                     (double)NAN,
                                     (double)INFINITY,
                                     -(double)INFINITY,
                                     3.141592653589793,
                                     0.9999999999999999,
                                     -1.0000000000000002};
    const uint8_t b = u8(r);
    if (b < 200)
        return awkward[b % (sizeof awkward / sizeof *awkward)];
    if (b < 230)
        return (double)(int8_t)u8(r) / 8.0;
    const uint64_t bits = u64(r);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* ---- the harness state ----------------------------------------------------------------- */

typedef struct state {
    pyad_tape *tape[2];
    int edited[2];          /* a leaf's value was set in this generation: replays would differ */
    int64_t pool[POOL];     /* handles returned so far (of either tape, stale ones included) */
    int npool;
    int quiet;              /* a bulk that remembers only its last record */
    pyad_program *prog[MAXPROG];
    int64_t records;        /* pushed during this input, to bound the run time */
    int64_t held[2][MAXHELD]; /* per tape, a record of each segment whose pin we hold */
    int nheld[2];
    double *borrowed[MAXBORROWED]; /* matrices lent to pyad_push_matvec_borrowed, which */
    int64_t nborrowed_of[MAXBORROWED]; /* do_mutate changes; freed after the tapes */
    int nborrowed;
    uint8_t released[MAXBORROWED]; /* pyad_tape_released gave the token (index + 1) back */
} state;

static void remember(state *s, int64_t h)
{
    if (h > 0 && !s->quiet)
        s->pool[s->npool++ % POOL] = h;
}

/* The segment of a handle: handles of one tape generation differ only in the slot, whose
   high bits name the segment (the frontend's rule too). */
static int64_t segment_of(int64_t h)
{
    int shift = 0;
    while ((1 << shift) < pyad_chunk_records())
        shift++;
    return h >> shift;
}

/* A pin we now hold on the segment of h (a segment just opened, as the frontend adopts it);
   past MAXHELD the oldest is forgotten (it stays pinned). */
static void hold(state *s, int which, int64_t h)
{
    if (s->nheld[which] == MAXHELD) {
        memmove(s->held[which], s->held[which] + 1, (MAXHELD - 1) * sizeof s->held[which][0]);
        s->nheld[which]--;
    }
    s->held[which][s->nheld[which]++] = h;
}

/* Forget one pin we hold on the segment of h (after an unpin of it succeeded). */
static void unhold(state *s, int which, int64_t h)
{
    for (int k = 0; k < s->nheld[which]; k++)
        if (segment_of(s->held[which][k]) == segment_of(h)) {
            s->held[which][k] = s->held[which][--s->nheld[which]];
            return;
        }
}

/* A new tape generation: the pin its first segment has is ours. */
static void fresh_tape(state *s, int which)
{
    int64_t seg = 0;
    s->nheld[which] = 0;
    if (s->tape[which] != NULL && pyad_tape_segment(s->tape[which], &seg) == PYAD_OK)
        hold(s, which, seg);
}

static int64_t handle(state *s, reader *r)
{
    const uint8_t b = u8(r);
    const int n = s->npool < POOL ? s->npool : POOL;
    if (b < 200 && n > 0)
        return s->pool[(b + s->npool) % n]; /* recent handles are likelier */
    if (b < 215 && n > 0)
        return s->pool[b % n] ^ (int64_t)(1ull << (u8(r) % 63));
    if (b < 230)
        return 0;
    return (int64_t)u64(r);
}

static int64_t len_of(pyad_tape *t)
{
    int64_t n = -1;
    if (t == NULL)
        return 0;
    CHECK(pyad_tape_len(t, &n) == PYAD_OK && n >= 0);
    return n;
}

static int64_t last_of(pyad_tape *t)
{
    int64_t h = -1;
    if (t == NULL)
        return 0;
    const int st = pyad_tape_last(t, &h);
    CHECK(st == PYAD_OK || st == PYAD_MISUSE); /* an empty tape has no newest record */
    return st == PYAD_OK ? h : 0;
}

typedef struct snapshot {
    int64_t len[2], last[2];
} snapshot;

static snapshot snap(const state *s)
{
    snapshot z;
    for (int i = 0; i < 2; i++) {
        z.len[i] = len_of(s->tape[i]);
        z.last[i] = last_of(s->tape[i]);
    }
    return z;
}

static void unchanged(const state *s, snapshot before)
{
    const snapshot now = snap(s);
    CHECK(memcmp(&now, &before, sizeof now) == 0);
}

/* A push's result: a handle, or -status; the tape grew by `grew` records exactly on success. */
static int64_t pushed(state *s, snapshot before, int64_t h, int tape, int64_t grew)
{
    const snapshot now = snap(s);
    if (h < 0 && h != -PYAD_SEGMENT) {
        CHECK(h != -PYAD_OK && known((int)-h));
        CHECK(memcmp(&now, &before, sizeof now) == 0);
        return 0;
    }
    if (h == -PYAD_SEGMENT) {
        h = now.last[tape];
        hold(s, tape, h);
    }
    CHECK(now.len[tape] >= 0);
    CHECK(now.last[tape] == h);
    if (now.len[tape] != before.len[tape] + grew)
        CHECK(0);
    remember(s, h);
    s->records += grew;
    return h;
}

static pyad_tape *tape_of(state *s, reader *r, int *which)
{
    *which = u8(r) & 1;
    return s->tape[*which];
}

static int same_double(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* ---- the per-op entry points, from the op table -------------------------------------- */

typedef int64_t (*unary_fn)(int64_t);
typedef int64_t (*binary_fn)(int64_t, int64_t);
typedef int64_t (*vc_fn)(int64_t, double);
typedef int64_t (*cv_fn)(double, int64_t);

#define FUZZ_U_0(name)
#define FUZZ_U_PYAD_NARY(name)
#define FUZZ_U_2(name)
#define FUZZ_U_1(name) pyad_##name,
static const unary_fn unary_fns[] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) FUZZ_U_##ARITY(name)
#include "ops.def"
#undef PYAD_OP
};

#define FUZZ_B_0(name, suffix)
#define FUZZ_B_PYAD_NARY(name, suffix)
#define FUZZ_B_1(name, suffix)
#define FUZZ_B_2(name, suffix) pyad_##name##suffix,
static const binary_fn vv_fns[] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) FUZZ_B_##ARITY(name, )
#include "ops.def"
#undef PYAD_OP
};
static const vc_fn vc_fns[] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) FUZZ_B_##ARITY(name, _vc)
#include "ops.def"
#undef PYAD_OP
};
static const cv_fn cv_fns[] = {
#define PYAD_OP(NAME, name, ARITY, KEEP, MATH) FUZZ_B_##ARITY(name, _cv)
#include "ops.def"
#undef PYAD_OP
};
#define COUNT(a) (sizeof(a) / sizeof *(a))

static int op_code(reader *r)
{
    const uint8_t b = u8(r);
    const int op = b < 240 ? b % (pyad_op_count() + 2) /* now and then one past the table */
                           : (int)(int32_t)(uint32_t)u64(r);
    CHECK((pyad_op_name(op) == NULL) == (pyad_op_arity(op) == -2));
    CHECK((op >= 0 && op < pyad_op_count()) == (pyad_op_name(op) != NULL));
    return op;
}

/* An operand count: small mostly, sometimes around a segment, sometimes invalid. */
static int64_t count(reader *r, int64_t small)
{
    const uint8_t b = u8(r);
    if (b < 220)
        return b % (small + 1);
    switch (b % 6) {
    case 0:
        return pyad_chunk_records();
    case 1:
        return pyad_chunk_records() + 1;
    case 2:
        return -1;
    case 3:
        return (int64_t)UINT32_MAX / 4 + 1;
    case 4:
        return INT64_MIN;
    default:
        return b % (MAXN + 1);
    }
}

/* Operand lists: handles[j] from the pool, 0 or garbage; either array may be NULL. */
typedef struct operands {
    int64_t h[MAXN];
    double c[MAXN];
    int64_t *hp;
    double *cp;
} operands;

static void fill_operands(state *s, reader *r, operands *o, int64_t n)
{
    const uint8_t shape = u8(r);
    o->hp = (shape & 3) == 0 ? NULL : o->h;
    o->cp = (shape & 12) == 0 ? NULL : o->c;
    const int64_t m = n < 0 ? 0 : n > MAXN ? MAXN : n;
    for (int64_t j = 0; j < m; j++) {
        o->h[j] = handle(s, r);
        o->c[j] = f64(r);
    }
}

/* ---- checks after a successful backward ---------------------------------------------- */

#define WATCH 16
typedef struct grads {
    int64_t h[WATCH];
    double g[WATCH];
    int ok[WATCH];
} grads;

static grads watch(state *s, pyad_tape *t)
{
    grads w;
    const int n = s->npool < POOL ? s->npool : POOL;
    for (int k = 0; k < WATCH; k++) {
        w.h[k] = n ? s->pool[(s->npool + k) % n] : 0;
        w.ok[k] = pyad_get_grad(t, w.h[k], &w.g[k]) == PYAD_OK;
    }
    return w;
}

static void grads_unchanged(pyad_tape *t, const grads *w)
{
    for (int k = 0; k < WATCH; k++) {
        double g;
        if (w->ok[k])
            CHECK(pyad_get_grad(t, w->h[k], &g) == PYAD_OK && same_bits(g, w->g[k]));
    }
}

static void do_backward(state *s, reader *r)
{
    int which;
    pyad_tape *t = tape_of(s, r, &which);
    const int64_t h = handle(s, r);
    const double up = f64(r);
    const int check_leaves = u8(r) & 1;
    int64_t oh[8];
    double op[8], before[8], hb = 0.0;
    int64_t n = -1;
    int op_code_h = -1;
    if (check_leaves && pyad_get_operands(t, h, 8, oh, op, &n) == PYAD_OK && n <= 8 &&
        pyad_get_op(t, h, &op_code_h) == PYAD_OK && op_code_h != PYAD_OP_LEAF) {
        for (int64_t j = 0; j < n; j++) {
            int o = -1;
            if (pyad_get_op(t, oh[j], &o) != PYAD_OK || o != PYAD_OP_LEAF)
                n = -1;
            for (int64_t k = 0; k < j; k++)
                if (oh[k] == oh[j])
                    n = -1; /* a repeated operand sums in an order we do not model */
        }
        for (int64_t j = 0; j < n; j++)
            CHECK(pyad_get_grad(t, oh[j], &before[j]) == PYAD_OK);
        CHECK(pyad_get_grad(t, h, &hb) == PYAD_OK);
    } else {
        n = -1;
    }
    const snapshot sn = snap(s);
    const grads w = watch(s, t);
    const int st = pyad_backward(t, h, up);
    CHECK(known(st) && st != PYAD_SEGMENT);
    unchanged(s, sn);
    if (st != PYAD_OK) {
        if (t != NULL)
            grads_unchanged(t, &w);
        return;
    }
    double g;
    if (n >= 0) {
        /* the sweep skips records whose adjoint is 0, so upstream 0 adds nothing at all */
        CHECK(pyad_get_grad(t, h, &g) == PYAD_OK && same_double(g, hb + up));
        if (up == 0.0)
            n = 0;
        for (int64_t j = 0; j < n; j++)
            CHECK(pyad_get_grad(t, oh[j], &g) == PYAD_OK && same_double(g, before[j] + op[j] * up));
    }
}

/* ---- programs ------------------------------------------------------------------------ */

/* Run p at the recorded point: values, guards and (for output `seed_out`) gradients must be
   the tape's. The tape's leaves have not been edited since the records were pushed. */
static void check_replay(pyad_tape *t, pyad_program *p, int64_t nin, const int64_t *in,
                         int64_t nout, const int64_t *out, const double *oc)
{
    double x[8], val[4], g[8], tg[8], v[8], hv[8], hval, hg[8];
    int64_t guard = -1;
    for (int64_t i = 0; i < nin; i++)
        CHECK(pyad_get_value(t, in[i], &x[i]) == PYAD_OK);
    const int64_t nw = pyad_program_work(p, 1, 0);
    if (nw < 1 || nw > MAXWORK)
        return;
    double *work = malloc((size_t)nw * sizeof *work);
    CHECK(work != NULL);
    /* one seed row per output that is a record, in turn */
    for (int64_t j = 0; j < nout; j++) {
        double seed[4] = {0.0, 0.0, 0.0, 0.0};
        seed[j] = 1.0;
        CHECK(pyad_program_run(p, 1, x, 1, seed, val, g, &guard, work, nw) == PYAD_OK);
        CHECK(guard == 0);
        for (int64_t k = 0; k < nout; k++) {
            double y = oc[k];
            if (out[k] != 0)
                CHECK(pyad_get_value(t, out[k], &y) == PYAD_OK);
            CHECK(same_bits(val[k], y));
        }
        if (out[j] == 0)
            continue;
        CHECK(pyad_set_grads(t, nin, in, 0.0) == PYAD_OK);
        CHECK(pyad_backward(t, out[j], 1.0) == PYAD_OK);
        CHECK(pyad_get_grads(t, nin, in, tg) == PYAD_OK);
        for (int64_t i = 0; i < nin; i++)
            CHECK(same_double(g[i], tg[i]));
    }
    free(work);
    if (nout != 1)
        return;
    const int64_t nh = pyad_program_work(p, 1, 1);
    if (nh < 1 || nh > MAXWORK)
        return;
    work = malloc((size_t)nh * sizeof *work);
    CHECK(work != NULL);
    for (int64_t i = 0; i < nin; i++)
        v[i] = i == 0 ? 1.0 : 0.0;
    CHECK(pyad_program_hvp(p, x, 1, v, &hval, hg, hv, &guard, work, nh) == PYAD_OK);
    CHECK(guard == 0 && same_bits(hval, val[0]));
    double seed = 1.0;
    CHECK(pyad_program_run(p, 1, x, 1, &seed, val, g, NULL, work, nh) == PYAD_OK);
    for (int64_t i = 0; i < nin; i++)
        CHECK(same_double(hg[i], g[i]));
    free(work);
}

static void do_program_new(state *s, reader *r)
{
    int which;
    pyad_tape *t = tape_of(s, r, &which);
    const int slot = u8(r) % MAXPROG;
    int64_t in[8], out[4], gh[6];
    double oc[4], gc[6];
    int kind[3];
    const uint8_t shape = u8(r);
    const int64_t nin = shape % 9, nout = (shape >> 4) % 5, nguard = u8(r) % 4;
    for (int64_t i = 0; i < nin; i++)
        in[i] = handle(s, r);
    for (int64_t j = 0; j < nout; j++) {
        out[j] = handle(s, r);
        oc[j] = f64(r);
    }
    const int nulls = u8(r); /* which optional arrays are passed as NULL */
    const int honest = u8(r) & 1; /* guards that held while recording, or arbitrary kinds */
    for (int64_t g = 0; g < nguard; g++) {
        double side[2];
        for (int k = 0; k < 2; k++) {
            gh[2 * g + k] = handle(s, r);
            gc[2 * g + k] = f64(r);
            side[k] = (nulls & 16) ? 0.0 : gc[2 * g + k];
            if (gh[2 * g + k] != 0 && pyad_get_value(t, gh[2 * g + k], &side[k]) != PYAD_OK)
                side[k] = (double)NAN;
        }
        const int cmp = u8(r) & 3;
        const int held = cmp == 0   ? side[0] < side[1]
                         : cmp == 1 ? side[0] <= side[1]
                         : cmp == 2 ? side[0] > side[1]
                                    : side[0] >= side[1];
        kind[g] = honest ? cmp | (held ? 4 : 0) : (int)(int8_t)u8(r);
    }
    pyad_program *p = NULL;
    const snapshot sn = snap(s);
    const int st =
        pyad_program_new(t, nin, nin || !(nulls & 1) ? in : NULL, nout,
                         nout || !(nulls & 2) ? out : NULL, (nulls & 4) ? NULL : oc, nguard,
                         nguard || !(nulls & 8) ? gh : NULL, (nulls & 16) ? NULL : gc, kind, &p);
    CHECK(known(st) && st != PYAD_SEGMENT);
    unchanged(s, sn);
    if (st != PYAD_OK) {
        CHECK(p == NULL);
        return;
    }
    CHECK(p != NULL);
    int64_t info[8];
    CHECK(pyad_program_info(p, info) == PYAD_OK);
    CHECK(info[0] == nin && info[1] == nout && info[6] == nguard && info[7] > 0);
    if (!s->edited[which] && (honest || nguard == 0)) {
        /* values are checked against the tape, so grads and hvp need no allocation to fail */
        pyad_debug_fail_alloc(0);
        check_replay(t, p, nin, in, nout, out, (nulls & 4) ? (const double[4]){0} : oc);
    }
    pyad_program_free(s->prog[slot]);
    s->prog[slot] = p;
}

static void do_program_run(state *s, reader *r)
{
    const pyad_program *p = s->prog[u8(r) % MAXPROG];
    int64_t info[8] = {0};
    if (p == NULL) {
        CHECK(pyad_program_info(p, info) == PYAD_MISUSE);
        CHECK(pyad_program_work(p, 1, 0) == -1);
        double w = 0.0;
        CHECK(pyad_program_run(p, 1, &w, 0, NULL, NULL, NULL, NULL, &w, 1) == PYAD_MISUSE);
        return;
    }
    CHECK(pyad_program_info(p, info) == PYAD_OK);
    const int64_t nin = info[0], nout = info[1], nguard = info[6];
    const int64_t k = u8(r) % 5, nseed = u8(r) % 3;
    const uint8_t mode = u8(r);
    /* the buffer is sized for `fit` points: fewer than k makes the run go in blocks */
    const int64_t fit = 1 + mode % (k > 0 ? k : 1);
    const int64_t need = pyad_program_work(p, fit, 0);
    CHECK(need != 0);
    if (need < 0 || need > MAXWORK)
        return;
    const int64_t nwork = (mode & 0x80) ? pyad_program_work(p, 1, 0) - 1 : need;
    double *x = malloc(((size_t)(k * nin) + 1) * sizeof *x);
    double *seeds = malloc(((size_t)(nseed * nout) + 1) * sizeof *seeds);
    double *values = malloc(((size_t)(k * nout) + 1) * sizeof *values);
    double *gr = malloc(((size_t)(k * nseed * nin) + 1) * sizeof *gr);
    int64_t *guards = malloc(((size_t)k + 1) * sizeof *guards);
    double *work = malloc(((size_t)(nwork > 0 ? nwork : 0) + 1) * sizeof *work);
    CHECK(x && seeds && values && gr && guards && work);
    for (int64_t i = 0; i < k * nin; i++)
        x[i] = f64(r);
    for (int64_t i = 0; i < nseed * nout; i++)
        seeds[i] = f64(r);
    const int st = pyad_program_run(p, k, x, nseed, seeds, (mode & 2) ? NULL : values,
                                    nseed ? gr : NULL, (mode & 4) ? NULL : guards, work, nwork);
    if (mode & 0x80)
        CHECK(st == PYAD_MISUSE);
    else
        CHECK(st == PYAD_OK);
    for (int64_t q = 0; st == PYAD_OK && !(mode & 4) && q < k; q++)
        CHECK(guards[q] >= 0 && guards[q] <= nguard);
    free(x);
    free(seeds);
    free(values);
    free(gr);
    free(guards);
    free(work);
}

static void do_program_hvp(state *s, reader *r)
{
    const pyad_program *p = s->prog[u8(r) % MAXPROG];
    int64_t info[8] = {0};
    if (p == NULL || pyad_program_info(p, info) != PYAD_OK)
        return;
    const int64_t nin = info[0], nout = info[1], ndir = u8(r) % 4;
    const uint8_t mode = u8(r);
    const int64_t need = pyad_program_work(p, 1, ndir);
    if (need < 0 || need > MAXWORK)
        return;
    const int64_t nwork = (mode & 0x80) ? need - 1 : need;
    double *x = malloc(((size_t)nin + 1) * sizeof *x);
    double *v = malloc(((size_t)(nin * ndir) + 1) * sizeof *v);
    double *hv = malloc(((size_t)(nin * ndir) + 1) * sizeof *hv);
    double *g = malloc(((size_t)nin + 1) * sizeof *g);
    double *work = malloc(((size_t)nwork + 1) * sizeof *work);
    CHECK(x && v && hv && g && work);
    for (int64_t i = 0; i < nin; i++)
        x[i] = f64(r);
    for (int64_t i = 0; i < nin * ndir; i++)
        v[i] = f64(r);
    double value;
    int64_t guard = -1;
    const int st =
        pyad_program_hvp(p, x, ndir, v, (mode & 1) ? NULL : &value, (mode & 2) ? NULL : g, hv,
                         (mode & 4) ? NULL : &guard, work, nwork);
    if (nout != 1 || ndir < 1 || (mode & 0x80))
        CHECK(st == PYAD_MISUSE);
    else
        CHECK(st == PYAD_OK && ((mode & 4) || (guard >= 0 && guard <= info[6])));
    free(x);
    free(v);
    free(hv);
    free(g);
    free(work);
}

/* ---- the interpreter ----------------------------------------------------------------- */

static void do_push(state *s, reader *r, int form)
{
    int which;
    pyad_tape *t = tape_of(s, r, &which);
    const int op = op_code(r);
    const int64_t a = handle(s, r), b = handle(s, r);
    const double ca = f64(r), cb = f64(r);
    const snapshot sn = snap(s);
    int64_t h;
    switch (form) {
    case 0:
        h = pyad_push_v(t, op, a);
        break;
    case 1:
        h = pyad_push_vv(t, op, a, b);
        break;
    case 2:
        h = pyad_push_vc(t, op, a, cb);
        break;
    default:
        h = pyad_push_cv(t, op, ca, b);
        break;
    }
    pushed(s, sn, h, which, 1);
}

/* The per-op entry points find the tape from the operands, so either tape may grow. */
static void do_entry(state *s, reader *r)
{
    const uint8_t form = u8(r) % 4, pick = u8(r);
    const int64_t a = handle(s, r), b = handle(s, r);
    const double c = f64(r);
    const snapshot sn = snap(s);
    int64_t h;
    switch (form) {
    case 0:
        h = unary_fns[pick % COUNT(unary_fns)](a);
        break;
    case 1:
        h = vv_fns[pick % COUNT(vv_fns)](a, b);
        break;
    case 2:
        h = vc_fns[pick % COUNT(vc_fns)](a, c);
        break;
    default:
        h = cv_fns[pick % COUNT(cv_fns)](c, b);
        break;
    }
    const snapshot now = snap(s);
    if (h < 0 && h != -PYAD_SEGMENT) {
        CHECK(known((int)-h) && h != 0);
        CHECK(memcmp(&now, &sn, sizeof now) == 0);
        return;
    }
    const int64_t grew = now.len[0] + now.len[1] - sn.len[0] - sn.len[1];
    CHECK(grew == 1);
    const int which = now.len[0] != sn.len[0] ? 0 : 1;
    if (h == -PYAD_SEGMENT) {
        h = now.last[which];
        hold(s, which, h);
    }
    CHECK(h == now.last[which]);
    remember(s, h);
    s->records++;
}

/* The segments a multi-record push opened (out[0..n), cur naming the segment current before):
   where an output is not in the segment of the one before; their pins are ours. Checks the
   push's status says so, and remembers the outputs. */
static void opened_segments(state *s, int which, int st, const int64_t *out, int64_t n, int64_t cur)
{
    for (int64_t j = 0; j < n; j++)
        if (segment_of(out[j]) != segment_of(j > 0 ? out[j - 1] : cur))
            hold(s, which, out[j]);
    CHECK((st == PYAD_SEGMENT) == (n > 0 && segment_of(out[n - 1]) != segment_of(cur)));
    for (int64_t j = 0; j < n; j++)
        remember(s, out[j]);
    s->records += n;
}

static void do_nary(state *s, reader *r, operands *o, int kind)
{
    int which;
    pyad_tape *t = tape_of(s, r, &which);
    int64_t n = count(r, 12);
    int64_t h;
    if (kind == 1 && n > MAXN / 2 && n <= (int64_t)UINT32_MAX / 4)
        n = MAXN / 2; /* dot reads 2n operands; larger invalid counts are refused unread */
    fill_operands(s, r, o, kind == 1 && n > 0 ? 2 * n : n);
    const snapshot sn = snap(s);
    switch (kind) {
    case 0: {
        const int op = u8(r) & 1 ? PYAD_OP_SUM : op_code(r);
        h = pyad_push_nary(t, op, n, o->hp, o->cp);
        break;
    }
    case 1: {
        /* w from the first half of the lists, x from the second */
        const int64_t off = n > 0 && n <= MAXN / 2 ? n : 0;
        h = pyad_push_dot(t, n, o->hp, o->cp, o->hp ? o->hp + off : NULL,
                          o->cp ? o->cp + off : NULL);
        break;
    }
    case 2: {
        double partials[MAXN];
        for (int64_t j = 0; j < (n < 0 ? 0 : n > MAXN ? MAXN : n); j++)
            partials[j] = o->c[(j + 1) % MAXN];
        h = pyad_push_primitive(t, n, o->hp, o->cp, f64(r), (u8(r) & 7) ? partials : NULL);
        break;
    }
    default: {
        int64_t out[MAXN], cur = 0; /* cur: a handle naming the segment current before */
        if (t != NULL)
            CHECK(pyad_tape_segment(t, &cur) == PYAD_OK);
        const int st = pyad_push_softmax(t, n, o->hp, o->cp, (u8(r) & 7) ? out : NULL);
        CHECK(known(st));
        if (st != PYAD_OK && st != PYAD_SEGMENT) {
            unchanged(s, sn);
            return;
        }
        CHECK(n >= 1 && n <= MAXN);
        const snapshot now = snap(s);
        CHECK(now.len[which] == sn.len[which] + n && now.last[which] == out[n - 1]);
        opened_segments(s, which, st, out, n, cur);
        return;
    }
    }
    pushed(s, sn, h, which, 1);
}

/* Flip one bit of a matrix lent to a tape, or flip it back: the sweeps, compiles and operand
   reads that need its row then fail with CHANGED (and change nothing), or work again. */
static void do_mutate(state *s, reader *r)
{
    if (s->nborrowed == 0)
        return;
    const int i = u8(r) % s->nborrowed;
    const uint64_t e = u64(r), bit = u8(r) % 64;
    if (s->nborrowed_of[i] == 0)
        return;
    double *d = s->borrowed[i] + e % (uint64_t)s->nborrowed_of[i];
    uint64_t u;
    memcpy(&u, d, sizeof u);
    u ^= (uint64_t)1 << bit;
    memcpy(d, &u, sizeof u);
}

/* Operand j of an array push's list: the record's value or the constant (handles checked). */
static double operand_value(pyad_tape *t, const int64_t *h, const double *c, int64_t j)
{
    double v = 0.0;
    if (h != NULL && h[j] != 0)
        CHECK(pyad_get_value(t, h[j], &v) == PYAD_OK);
    else
        v = c[j];
    return v;
}

/* The array pushes and pyad_get_values: operands from a fuzzed list, or (mode & 1) from the
   four handles remembered last, so that whole arrays of live records occur. */
static void do_arrays(state *s, reader *r, operands *o)
{
    int which;
    pyad_tape *t = tape_of(s, r, &which);
    const uint8_t kind = u8(r) % 6, mode = u8(r);
    int64_t n = count(r, 12), count_ = (int64_t)(u8(r) % 6) - (mode & 0x40 ? 1 : 0);
    /* the operand entries the call reads: n groups of count_ (reductions) or of 1, in one list
       or two (map, dots: b's after a's), at most MAXN; larger invalid counts are refused
       unread */
    const int64_t lists = kind == 1 || kind == 3 ? 2 : 1,
                  group = kind == 2 || kind == 3 || kind == 5 ? (count_ > 0 ? count_ : 0) : 1;
    if (group > 0 && n > MAXN / (group * lists) && n <= (int64_t)UINT32_MAX / 4)
        n = MAXN / (group * lists);
    const int64_t half = n > 0 && n <= MAXN ? n * group : 0;
    fill_operands(s, r, o, half * lists);
    const int pool = s->npool < POOL ? s->npool : POOL;
    for (int64_t j = 0; (mode & 1) && pool > 0 && j < half * lists; j++)
        o->h[j] = s->pool[(s->npool - 1 - j % 4 + POOL) % POOL % pool];
    const int64_t *ha = (mode & 2) ? NULL : o->h, *hb = (mode & 4) ? NULL : o->h + half;
    const double *ca = (mode & 8) ? NULL : o->c, *cb = (mode & 16) ? NULL : o->c + half;
    int64_t out[MAXN], where = -7, cur = 0;
    int64_t *outp = (mode & 0x80) && (mode & 0x20) ? NULL : out;
    if (t != NULL)
        CHECK(pyad_tape_segment(t, &cur) == PYAD_OK);
    const snapshot sn = snap(s);
    int op = 0, st;
    switch (kind) {
    case 0:
        st = pyad_push_leaves(t, n, ca, outp);
        break;
    case 1:
        op = op_code(r);
        st = pyad_push_map(t, op, n, ha, ca, hb, cb, outp, (mode & 0x20) ? NULL : &where);
        CHECK((mode & 0x20) || (where >= -1 && where < (n > 0 ? n : 1)));
        CHECK((mode & 0x20) || st == PYAD_OK || st == PYAD_SEGMENT || where == -1 ||
              st == PYAD_STALE || st == PYAD_DOMAIN || st == PYAD_ZERODIV || st == PYAD_OVERFLOW ||
              st == PYAD_NONFINITE);
        break;
    case 2:
        op = u8(r) & 1 ? PYAD_OP_SUM : u8(r) & 1 ? PYAD_OP_LOGSUMEXP : op_code(r);
        st = pyad_push_reduce(t, op, n, count_, ha, ca, outp);
        break;
    case 3:
        st = pyad_push_dots(t, n, count_, ha, ca, hb, cb, outp);
        break;
    case 5: /* the matrix from the constants (n rows of count_), x from the handles' first */
        if ((mode & 0x10) && s->nborrowed < MAXBORROWED && ca != NULL) {
            /* lent: a copy the harness keeps (and may change) while the tape reads it */
            double *lent = malloc(((size_t)half + 1) * sizeof *lent);
            CHECK(lent != NULL);
            memcpy(lent, ca, (size_t)half * sizeof *lent);
            s->nborrowed_of[s->nborrowed] = half;
            s->borrowed[s->nborrowed++] = lent;
            st = pyad_push_matvec_borrowed(t, n, count_, lent, ha, s->nborrowed, outp);
        } else {
            st = pyad_push_matvec(t, n, count_, ca, ha, outp);
        }
        break;
    default: {
        double v[MAXN];
        st = pyad_get_values(t, n, ha, (mode & 0x20) ? NULL : v);
        CHECK(st != PYAD_SEGMENT);
        for (int64_t j = 0; st == PYAD_OK && j < n && j < 8; j++) {
            double w;
            CHECK(pyad_get_value(t, ha[j], &w) == PYAD_OK && same_bits(v[j], w));
        }
        unchanged(s, sn);
        CHECK(known(st));
        return;
    }
    }
    CHECK(known(st));
    if (st != PYAD_OK && st != PYAD_SEGMENT) {
        unchanged(s, sn);
        return;
    }
    CHECK(n >= 0 && n <= MAXN && (n == 0 || outp != NULL));
    const snapshot now = snap(s);
    CHECK(now.len[which] == sn.len[which] + n && now.len[1 - which] == sn.len[1 - which]);
    CHECK(n == 0 ? now.last[which] == sn.last[which] : now.last[which] == out[n - 1]);
    /* the first records are what the one-record arithmetic gives at the same operands */
    for (int64_t j = 0; j < n && j < 4; j++) {
        double y = 0.0, want = 0.0, da, db, wx[2 * 6];
        CHECK(pyad_get_value(t, out[j], &y) == PYAD_OK);
        if (kind == 0) {
            want = ca[j];
        } else if (kind == 1) {
            const double a = operand_value(t, ha, ca, j);
            const double b = pyad_op_arity(op) == 1 ? 0.0 : operand_value(t, hb, cb, j);
            CHECK(pyad_eval(op, a, b, &want, &da, &db) == PYAD_OK);
        } else if (kind == 5) { /* pyad_push_dots' value at (C[j,k], x_k) */
            for (int64_t i = 0; i < count_; i++) {
                wx[2 * i] = ca[j * count_ + i];
                wx[2 * i + 1] = operand_value(t, ha, NULL, i);
            }
            CHECK(pyad_eval_nary(PYAD_OP_DOT, 2 * count_, wx, &want) == PYAD_OK);
        } else {
            for (int64_t i = 0; i < count_; i++) {
                const int64_t e = j * count_ + i;
                wx[kind == 3 ? 2 * i : i] = operand_value(t, ha, ca, e);
                if (kind == 3)
                    wx[2 * i + 1] = operand_value(t, hb, cb, e);
            }
            CHECK(pyad_eval_nary(kind == 3 ? PYAD_OP_DOT : op, kind == 3 ? 2 * count_ : count_, wx,
                                 &want) == PYAD_OK);
        }
        CHECK(same_bits(y, want));
    }
    opened_segments(s, which, st, out, n, cur);
}

static void do_eval(reader *r)
{
    const int op = op_code(r);
    const double a = f64(r), b = f64(r);
    double y, da, db, out[6], x[64], ys[64];
    int st = pyad_eval(op, a, b, &y, &da, &db);
    CHECK(known(st) && st != PYAD_SEGMENT);
    st = pyad_eval_second(op, a, b, out);
    CHECK(known(st) && st != PYAD_SEGMENT);
    const int64_t n = count(r, 16);
    const int64_t m = n < 0 ? 0 : n > 64 ? 64 : n;
    for (int64_t j = 0; j < m; j++)
        x[j] = f64(r);
    if (n <= 64) {
        st = pyad_eval_nary(op, n, x, ys);
        CHECK(known(st) && st != PYAD_SEGMENT);
    } else {
        st = pyad_eval_nary(op, n, NULL, ys);
        CHECK(st != PYAD_OK && known(st));
    }
}

static void do_records(state *s, reader *r)
{
    int which;
    pyad_tape *t = tape_of(s, r, &which);
    const int64_t h = handle(s, r);
    const snapshot sn = snap(s);
    double v;
    int op = -1;
    int st;
    const uint8_t sub = u8(r);
    double *vp = (sub & 0xf0) == 0xf0 ? NULL : &v; /* now and then a NULL out-pointer */
    switch (sub % 8) {
    case 0:
        st = pyad_get_value(t, h, vp);
        break;
    case 1:
        st = pyad_set_value(t, h, f64(r));
        if (st == PYAD_OK)
            s->edited[which] = 1;
        break;
    case 2:
        st = pyad_get_grad(t, h, vp);
        break;
    case 3:
        st = pyad_set_grad(t, h, f64(r));
        break;
    case 4:
        st = pyad_get_op(t, h, vp ? &op : NULL);
        CHECK(st != PYAD_OK || (op >= 0 && op < pyad_op_count()));
        break;
    case 5: {
        int64_t hs[16];
        double g[16];
        const int64_t n = count(r, 16);
        for (int64_t j = 0; j < 16; j++)
            hs[j] = handle(s, r);
        const int null = (u8(r) & 7) == 0;
        if (u8(r) & 1)
            st = pyad_get_grads(t, n > 16 ? 0 : n, null ? NULL : hs, g);
        else
            st = pyad_set_grads(t, n > 16 ? 0 : n, null ? NULL : hs, f64(r));
        break;
    }
    case 6: {
        int64_t hs[8], n = -7;
        double ps[8];
        const int64_t cap = (int64_t)(u8(r) % 10) - 1; /* -1 .. 8 */
        const int null = (u8(r) & 7) == 0;
        st = pyad_get_operands(t, h, cap, null ? NULL : hs, null ? NULL : ps, &n);
        if (st == PYAD_OK) {
            CHECK(n >= 0);
            for (int64_t j = 0; j < n && j < cap; j++)
                CHECK(pyad_get_value(t, hs[j], &v) == PYAD_OK);
        }
        break;
    }
    default: {
        int64_t counts[64], depth = -1, total = 0;
        st = pyad_tape_stats(t, (u8(r) & 7) ? counts : NULL, &depth);
        if (st == PYAD_OK) {
            for (int k = 0; k < pyad_op_count(); k++)
                total += counts[k];
            CHECK(depth >= 0 && total == len_of(t));
        }
        break;
    }
    }
    CHECK(known(st) && st != PYAD_SEGMENT);
    unchanged(s, sn);
    if (t == NULL)
        CHECK(st == PYAD_MISUSE);
}

static void do_tape(state *s, reader *r)
{
    int which;
    pyad_tape *t = tape_of(s, r, &which);
    const snapshot sn = snap(s);
    int64_t out = 0;
    int st;
    switch (u8(r) % 8) {
    case 0:
        st = pyad_tape_reset(t);
        if (st == PYAD_OK) {
            CHECK(len_of(t) == 0);
            s->edited[which] = 0;
            fresh_tape(s, which);
        }
        return;
    case 1: /* free the tape and make a new one: its handles must now be refused */
        pyad_tape_free(t);
        s->tape[which] = NULL;
        s->edited[which] = 0;
        st = pyad_tape_new(&s->tape[which]);
        CHECK(st == PYAD_OK || st == PYAD_NOMEM || st == PYAD_FULL);
        CHECK((st == PYAD_OK) == (s->tape[which] != NULL));
        fresh_tape(s, which);
        return;
    case 2:
        st = pyad_tape_segment(t, &out);
        remember(s, st == PYAD_OK ? out : 0);
        break;
    case 3:
        st = pyad_tape_pin(t, handle(s, r));
        break;
    case 4:
        out = handle(s, r);
        st = pyad_tape_unpin(t, out);
        if (st == PYAD_OK) {
            unhold(s, which, out);
            /* the last pin going may collect unneeded segments: fewer records held, but
               the current segment and its newest record stay */
            const snapshot now = snap(s);
            CHECK(now.len[which] <= sn.len[which] && now.last[which] == sn.last[which]);
            CHECK(now.len[1 - which] == sn.len[1 - which]);
            return;
        }
        break;
    case 5:
        st = pyad_tape_set_debug(t, (int)(int8_t)u8(r));
        break;
    case 6:
        if (u8(r) & 1) {
            st = pyad_tape_nbytes(t, &out);
            CHECK(st != PYAD_OK || out > 0);
        } else {
            /* the borrowed matrices released: tokens the harness lent (1 .. nborrowed), each
               once (a freed tape's are never given: their flags stay clear) */
            int64_t tokens[2] = {0, 0}, n = -1;
            const int64_t cap = (int64_t)(u8(r) % 4) - 1; /* -1 .. 2 */
            st = pyad_tape_released(t, cap, tokens, &n);
            for (int64_t k = 0; st == PYAD_OK && k < n; k++) {
                CHECK(n <= cap && tokens[k] >= 1 && tokens[k] <= s->nborrowed);
                CHECK(!s->released[tokens[k] - 1]);
                s->released[tokens[k] - 1] = 1;
            }
        }
        break;
    default: {
        const int64_t made = pyad_debug_alloc_count();
        st = pyad_debug_fail_alloc((int64_t)(u8(r) % 24) - 1);
        CHECK(st == PYAD_OK || st == PYAD_MISUSE);
        CHECK(made >= 0 && pyad_debug_alloc_count() == made);
    }
        return;
    }
    CHECK(known(st) && st != PYAD_SEGMENT);
    CHECK(t == NULL || pyad_tape_errmsg(t) != NULL);
    unchanged(s, sn);
}

/* Drop every pin we hold on tape `which` but those on the current segment and on the
   segments of kept[0..nkept): as the frontend's segment objects go when their Vars die. */
static void release(state *s, pyad_tape *t, int which, const int64_t *kept, int nkept)
{
    int64_t cur = 0;
    if (t == NULL || pyad_tape_segment(t, &cur) != PYAD_OK)
        return;
    const snapshot sn = snap(s);
    int k = 0;
    for (int i = 0; i < s->nheld[which]; i++) {
        const int64_t h = s->held[which][i];
        int keep = segment_of(h) == segment_of(cur);
        for (int j = 0; j < nkept; j++)
            keep |= segment_of(h) == segment_of(kept[j]);
        /* MISUSE: the input unpinned it already; NOMEM: an injected failure in the
           collection the unpin starts, which keeps the pin */
        const int st = keep ? PYAD_NOMEM : pyad_tape_unpin(t, h);
        CHECK(st == PYAD_OK || st == PYAD_MISUSE || st == PYAD_NOMEM);
        if (st == PYAD_NOMEM)
            s->held[which][k++] = h;
    }
    s->nheld[which] = k;
    /* collections keep the current segment and the kept records */
    const snapshot now = snap(s);
    CHECK(now.len[which] <= sn.len[which] && now.last[which] == sn.last[which]);
    CHECK(now.len[1 - which] == sn.len[1 - which]);
}

/* pyad.compile after a release, as the frontend does it: the kept leaves as inputs, the
   other kept records (up to four) as outputs; the replay at the recorded point must be the
   tape's. */
static void compile_kept(state *s, pyad_tape *t, int which, const int64_t *kept, int nkept)
{
    int64_t in[8], out[4], nin = 0, nout = 0;
    for (int j = 0; j < nkept; j++) {
        int op = -1, seen = 0;
        for (int64_t k = 0; k < nin; k++)
            seen |= in[k] == kept[j];
        for (int64_t k = 0; k < nout; k++)
            seen |= out[k] == kept[j];
        if (seen || pyad_get_op(t, kept[j], &op) != PYAD_OK)
            continue; /* another tape's, or gone: a Var of a dead segment cannot exist */
        if (op == PYAD_OP_LEAF)
            in[nin++] = kept[j];
        else if (nout < 4)
            out[nout++] = kept[j];
    }
    pyad_program *p = NULL;
    const snapshot sn = snap(s);
    const int st = pyad_program_new(t, nin, in, nout, out, NULL, 0, NULL, NULL, NULL, &p);
    CHECK(known(st) && st != PYAD_SEGMENT);
    unchanged(s, sn);
    CHECK((st == PYAD_OK) == (p != NULL));
    if (st == PYAD_OK && !s->edited[which]) {
        pyad_debug_fail_alloc(0);
        check_replay(t, p, nin, in, nout, out, (const double[4]){0});
    }
    pyad_program_free(p);
}

/* Many records at once: leaves, or a chain of unary ops, to cross segment boundaries. With
   `drop`, each segment is unpinned once the next one opens, as the frontend does when its
   Vars die: segments then get collected and reused, and old handles name new records.
   With `align`, leaves to the end of the segment and on to k (< 16) records short of the
   next one's end, so that a softmax pushed next starts in a segment of no older record and
   runs into another. With `release`, the records of the bulk
   die with it: the pins are released but for the segments of the chosen few of the eight
   handles remembered last (the Vars still alive), and segments of leaves are recorded and
   dropped until the tape collects; the kept handles are then the newest remembered;
   with `compile` too, those are compiled (compile_kept). Aligned and released bulks
   remember only the last record they push, so the handles before them stay. */
static void do_bulk(state *s, reader *r)
{
    int which;
    pyad_tape *t = tape_of(s, r, &which);
    int64_t n = (int64_t)(u8(r) % 5) * 300;
    const uint8_t mode = u8(r);
    const int chain = mode & 1, drop = mode & 2, align = mode & 8, rel = mode & 0x20,
              compile = rel && (mode & 0x40);
    const double v = f64(r);
    int64_t h = chain ? handle(s, r) : 0, seg = 0, kept[8];
    int nkept = 0;
    if (align) {
        const int64_t C = pyad_chunk_records(), k = u8(r) % 16;
        int64_t last = 0, fill = 0;
        if (t != NULL && pyad_tape_last(t, &last) == PYAD_OK)
            fill = (last & (C - 1)) + 1;
        n = (C - fill) + (C - k); /* into a new segment, which holds no older handle */
    }
    if (rel) {
        const uint8_t pick = u8(r);
        for (int j = 0; j < 8 && j < s->npool && j < POOL; j++)
            if (pick & (1u << j))
                kept[nkept++] = s->pool[(s->npool - 1 - j) % POOL];
    }
    if (drop && (t == NULL || pyad_tape_segment(t, &seg) != PYAD_OK))
        return;
    s->quiet = align || rel;
    int64_t last = 0;
    for (int64_t j = 0; j < n && s->records < MAXREC; j++) {
        const snapshot sn = snap(s);
        const int64_t got = chain ? pyad_push_v(t, PYAD_OP_TANH, h) : pyad_push_leaf(t, v);
        h = pushed(s, sn, got, which, 1);
        if (h == 0)
            break;
        last = h;
        if (drop && got == -PYAD_SEGMENT) {
            /* MISUSE: the fuzzer may have unpinned it; NOMEM: an injected allocation failure
               in the collection the unpin starts, which keeps the pin */
            const int st = pyad_tape_unpin(t, seg);
            CHECK(st == PYAD_OK || st == PYAD_MISUSE || st == PYAD_NOMEM);
            if (st == PYAD_OK)
                unhold(s, which, seg);
            CHECK(pyad_tape_segment(t, &seg) == PYAD_OK);
        }
    }
    /* a release churns segments of leaves (dropped at once) until the tape collects: at
       most four, as the tape collects after four unpins at the latest */
    for (int round = 0; rel && t != NULL && round < 4; round++) {
        const int64_t before = len_of(t);
        release(s, t, which, kept, nkept);
        if (len_of(t) < before)
            break;
        for (int64_t j = 0; j < pyad_chunk_records() && s->records < MAXREC; j++) {
            const snapshot sn = snap(s);
            if ((last = pushed(s, sn, pyad_push_leaf(t, v), which, 1)) == 0)
                break;
        }
    }
    s->quiet = 0;
    if (align || rel)
        remember(s, last);
    if (rel) {
        for (int j = nkept; j-- > 0;)
            remember(s, kept[j]);
        if (compile && t != NULL)
            compile_kept(s, t, which, kept, nkept);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static operands o; /* large; one input at a time */
    memset(&o, 0, sizeof o); /* entries a call does not fill must not leak between inputs */
    static int threaded = 0; /* matvecs of 64 multiply-adds or more go on three threads */
    if (!threaded) {
        int64_t n = 0;
        CHECK(pyad_num_threads(3, &n) == PYAD_OK && n == 3);
        CHECK(pyad_debug_part_min(32) == PYAD_OK);
        threaded = 1;
    }
    CHECK(pyad_debug_wide_vectors(size % 2 == 0) == PYAD_OK);
    reader r = {data, size, 0};
    state s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 2; i++) {
        CHECK(pyad_tape_new(&s.tape[i]) == PYAD_OK);
        fresh_tape(&s, i);
    }
    while (r.at < r.n && s.records < MAXREC) {
        const uint8_t cmd = u8(&r);
        switch (cmd % 16) {
        case 0: {
            int which;
            pyad_tape *t = tape_of(&s, &r, &which);
            const double v = f64(&r);
            const snapshot sn = snap(&s);
            pushed(&s, sn, pyad_push_leaf(t, v), which, 1);
            break;
        }
        case 1:
        case 2:
        case 3:
        case 4:
            do_push(&s, &r, cmd % 16 - 1);
            break;
        case 5:
            do_entry(&s, &r);
            break;
        case 6:
        case 7:
        case 8:
        case 9:
            do_nary(&s, &r, &o, cmd % 16 - 6);
            break;
        case 10:
            do_records(&s, &r);
            break;
        case 11:
            do_tape(&s, &r);
            break;
        case 12:
            do_backward(&s, &r);
            break;
        case 13:
            if ((cmd & 0xc0) == 0xc0)
                do_arrays(&s, &r, &o);
            else if (cmd & 0x80)
                do_eval(&r);
            else if (cmd & 0x40)
                do_mutate(&s, &r);
            else
                do_bulk(&s, &r);
            break;
        case 14:
            do_program_new(&s, &r);
            break;
        default:
            if (cmd & 0x80)
                do_program_hvp(&s, &r);
            else
                do_program_run(&s, &r);
            break;
        }
    }
    pyad_debug_fail_alloc(0);
    for (int i = 0; i < MAXPROG; i++)
        pyad_program_free(s.prog[i]);
    for (int i = 0; i < 2; i++)
        pyad_tape_free(s.tape[i]);
    for (int i = 0; i < s.nborrowed; i++)
        free(s.borrowed[i]);
    return 0;
}
