/*
 * test_threads.c - tapes and threads: any thread may use a tape, one call at a time (the
 * caller orders them; here a mutex, as the Python frontend's lock does where there is no
 * GIL); what a caller reads after its call (the error message, the segment it opened) is its
 * own; and a stale handle never touches the tape now at its registry index, whatever another
 * thread does to that tape. Run by test_main.c, and under ThreadSanitizer by `make tsan`.
 * The threads count what they see in their own structs; the main thread CHECKs (CHECK's
 * failure counter is not atomic).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"

/* ---- a tape made in one thread, used in another ---------------------------------------- */

struct handoff {
    pyad_tape *t;
    int64_t x;
    int64_t y;
    int backward, errmsg_ok;
};

static void *use_elsewhere(void *p)
{
    struct handoff *arg = p;
    arg->y = pyad_push_v(arg->t, PYAD_OP_EXP, arg->x);
    arg->backward = pyad_backward(arg->t, arg->y, 1.0);
    /* this thread's failure, and its own message */
    arg->errmsg_ok =
        pyad_push_v(arg->t, PYAD_OP_LOG, pyad_push_leaf(arg->t, -1.0)) == -(int64_t)PYAD_DOMAIN &&
        strstr(pyad_tape_errmsg(arg->t), "log(-1)") != NULL;
    return NULL;
}

static void test_any_thread_uses_a_tape(void)
{
    pyad_tape *t = new_tape();
    struct handoff arg = {t, got(t, pyad_push_leaf(t, 0.5)), 0, -1, 0};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, use_elsewhere, &arg) == 0);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(arg.y > 0 && arg.backward == PYAD_OK && arg.errmsg_ok);
    CHECK(value(t, arg.y) == exp(0.5) && grad(t, arg.x) == exp(0.5));
    CHECK(tape_len(t) == 3);
    /* the other thread's failure left no message for this one */
    CHECK(strcmp(pyad_tape_errmsg(t), "") == 0);
    pyad_tape_free(t);
}

/* ---- two threads on one tape, each call under a shared mutex --------------------------- */

#define CHAIN 3000 /* records per thread: several segments each */

struct sharer {
    pyad_tape *t;
    pthread_mutex_t *lock;
    double start;
    int64_t leaf, last;
    int failures; /* pushes that failed, segments opened whose handle was not this thread's */
};

static void *record_chain(void *p)
{
    struct sharer *arg = p;
    pthread_mutex_lock(arg->lock);
    int64_t v = arg->leaf = pyad_push_leaf(arg->t, arg->start);
    pthread_mutex_unlock(arg->lock);
    arg->failures = v <= 0;
    for (int i = 0; i < CHAIN; i++) {
        pthread_mutex_lock(arg->lock);
        int64_t r = pyad_push_vc(arg->t, PYAD_OP_ADD, v, 1.0);
        pthread_mutex_unlock(arg->lock);
        if (r == -(int64_t)PYAD_SEGMENT) {
            /* the other thread may have pushed in between: pyad_tape_opened still names
               this thread's record, whose value says whose it is */
            pthread_mutex_lock(arg->lock);
            double y = NAN;
            arg->failures +=
                pyad_tape_opened(arg->t, &r) != PYAD_OK || pyad_get_value(arg->t, r, &y) != PYAD_OK;
            pthread_mutex_unlock(arg->lock);
            arg->failures += y != arg->start + i + 1;
        }
        arg->failures += r <= 0;
        v = r;
    }
    arg->last = v;
    return NULL;
}

static void test_threads_share_a_tape(void)
{
    pyad_tape *t = new_tape();
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct sharer a = {t, &lock, 0.0, 0, 0, 0}, b = {t, &lock, 1e6, 0, 0, 0};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, record_chain, &a) == 0);
    CHECK(pthread_create(&tb, NULL, record_chain, &b) == 0);
    CHECK(pthread_join(ta, NULL) == 0 && pthread_join(tb, NULL) == 0);
    CHECK(a.failures == 0 && b.failures == 0);
    CHECK(tape_len(t) == 2 * (CHAIN + 1));
    CHECK(value(t, a.last) == CHAIN && value(t, b.last) == 1e6 + CHAIN);
    CHECK(pyad_backward(t, a.last, 2.0) == PYAD_OK && pyad_backward(t, b.last, 3.0) == PYAD_OK);
    CHECK(grad(t, a.leaf) == 2.0 && grad(t, b.leaf) == 3.0);
    pyad_tape_free(t);
}

/* ---- the segment a call opened, per thread --------------------------------------------- */

static void test_opened_and_pin_current(void)
{
    pyad_tape *t = new_tape(), *u = new_tape();
    int64_t h = 0, first = 0, seg = 0;
    CHECK(pyad_tape_opened(t, NULL) == PYAD_MISUSE);
    CHECK(pyad_tape_opened(u, &h) == PYAD_OK); /* u's creation opened its first segment */
    CHECK(pyad_tape_opened(t, &h) == PYAD_MISUSE);
    CHECK(pyad_tape_segment(u, &seg) == PYAD_OK && pyad_tape_opened(u, &h) == PYAD_OK && h == seg);
    const int64_t x = got(t, pyad_push_leaf(t, 1.0));
    int64_t r = x;
    for (int i = 0; r != -(int64_t)PYAD_SEGMENT; i++)
        r = i == 0 ? pyad_push_vc(t, PYAD_OP_MUL, x, 2.0) : pyad_push_vc(t, PYAD_OP_MUL, x, 3.0);
    CHECK(pyad_tape_opened(t, &first) == PYAD_OK && value(t, first) == 3.0);
    CHECK(pyad_tape_last(t, &h) == PYAD_OK && h == first);
    /* the current segment holds one record: pin it, and the pin outlives a reset's handles */
    CHECK(pyad_tape_pin_current(t, NULL) == PYAD_MISUSE);
    CHECK(pyad_tape_pin_current(t, &seg) == PYAD_OK && seg == first);
    CHECK(pyad_tape_unpin(t, seg) == PYAD_OK && pyad_tape_unpin(t, first) == PYAD_OK);
    CHECK(pyad_tape_unpin(t, first) == PYAD_MISUSE); /* both pins released: none left */
    CHECK(pyad_tape_reset(t) == PYAD_OK);
    CHECK(pyad_tape_opened(t, &h) == PYAD_OK && pyad_tape_segment(t, &seg) == PYAD_OK && h == seg &&
          h != first);
    /* an empty current segment can be pinned too */
    CHECK(pyad_tape_pin_current(t, &seg) == PYAD_OK && seg == h);
    CHECK(pyad_tape_unpin(t, seg) == PYAD_OK);
    pyad_tape_free(t);
    pyad_tape_free(u);
}

/* ---- adopting: a push outside the adopted segment pins its segment for its caller -------- */

static void test_adopting(void)
{
    pyad_tape *t = new_tape();
    int64_t seg = 0, h = 0, first = 0;
    const int64_t x = got(t, pyad_push_leaf(t, 1.0));
    CHECK(pyad_tape_segment(t, &seg) == PYAD_OK && pyad_tape_adopt(t, seg) == PYAD_OK);
    CHECK(pyad_push_vc(t, PYAD_OP_MUL, x, 2.0) > 0); /* the adopted segment: a handle */
    int64_t r = 0;
    while ((r = pyad_push_vc(t, PYAD_OP_MUL, x, 3.0)) > 0)
        ;
    CHECK(r == -(int64_t)PYAD_SEGMENT && pyad_tape_opened(t, &first) == PYAD_OK);
    /* the new segment is not adopted: each push into it is pinned for its caller */
    CHECK(pyad_push_vc(t, PYAD_OP_MUL, x, 4.0) == -(int64_t)PYAD_SEGMENT);
    CHECK(pyad_tape_opened(t, &h) == PYAD_OK && h != first && value(t, h) == 4.0);
    CHECK(pyad_push_nary(t, PYAD_OP_SUM, 1, &x, NULL) == -(int64_t)PYAD_SEGMENT);
    CHECK(pyad_tape_opened(t, &h) == PYAD_OK && value(t, h) == 1.0);
    /* more pushes pinned, and a failure that pins nothing (the pins are counted below) */
    CHECK(pyad_push_vc(t, PYAD_OP_POW, x, -1.5) == -(int64_t)PYAD_SEGMENT);
    const int64_t neg = pyad_push_vc(t, PYAD_OP_SUB, x, 2.0);
    CHECK(neg == -(int64_t)PYAD_SEGMENT && pyad_tape_opened(t, &h) == PYAD_OK);
    CHECK(pyad_push_v(t, PYAD_OP_LOG, h) == -(int64_t)PYAD_DOMAIN);
    /* adopting another segment than the current one changes nothing */
    CHECK(pyad_tape_adopt(t, seg) == PYAD_OK);
    CHECK(pyad_push_vc(t, PYAD_OP_MUL, x, 5.0) == -(int64_t)PYAD_SEGMENT);
    /* the current one: handles again */
    CHECK(pyad_tape_adopt(t, first) == PYAD_OK);
    CHECK(pyad_push_vc(t, PYAD_OP_MUL, x, 6.0) > 0);
    int unpinned = 0;
    while (pyad_tape_unpin(t, first) == PYAD_OK)
        unpinned++;
    CHECK(unpinned == 6); /* opening, 4.0, sum, pow, sub, 5.0: not the failed log */
    /* after a reset, the first segment is not adopted either */
    CHECK(pyad_tape_reset(t) == PYAD_OK);
    const int64_t y = pyad_push_leaf(t, 7.0);
    CHECK(y == -(int64_t)PYAD_SEGMENT && pyad_tape_opened(t, &h) == PYAD_OK && value(t, h) == 7.0);
    CHECK(pyad_tape_adopt(t, h) == PYAD_OK && pyad_push_leaf(t, 8.0) > 0);
    pyad_tape_free(t);
}

/* ---- error messages are per thread ------------------------------------------------------ */

struct failer {
    pyad_tape *t;
    pthread_mutex_t *lock;
    pthread_barrier_t *step;
    int op;
    const char *expect;
    int ok;
};

static void *fail_in_turn(void *p)
{
    struct failer *arg = p;
    pthread_mutex_lock(arg->lock);
    const int64_t x = pyad_push_leaf(arg->t, -1.0);
    const int64_t r = pyad_push_v(arg->t, arg->op, x);
    pthread_mutex_unlock(arg->lock);
    pthread_barrier_wait(arg->step); /* both threads have failed on the tape ... */
    pthread_mutex_lock(arg->lock);
    /* ... and each reads its own failure's message */
    arg->ok = r == -(int64_t)PYAD_DOMAIN && strstr(pyad_tape_errmsg(arg->t), arg->expect) != NULL;
    pthread_mutex_unlock(arg->lock);
    return NULL;
}

static void test_error_messages_are_per_thread(void)
{
    pyad_tape *t = new_tape();
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_barrier_t step;
    CHECK(pthread_barrier_init(&step, NULL, 2) == 0);
    struct failer a = {t, &lock, &step, PYAD_OP_LOG, "log(-1)", 0};
    struct failer b = {t, &lock, &step, PYAD_OP_SQRT, "sqrt(-1)", 0};
    pthread_t ta, tb;
    CHECK(pthread_create(&ta, NULL, fail_in_turn, &a) == 0);
    CHECK(pthread_create(&tb, NULL, fail_in_turn, &b) == 0);
    CHECK(pthread_join(ta, NULL) == 0 && pthread_join(tb, NULL) == 0);
    CHECK(a.ok && b.ok);
    pthread_barrier_destroy(&step);
    pyad_tape_free(t);
}

/* ---- stale handles while other threads reset and free tapes ---------------------------- */

#define ROUNDS 2000

struct churn {
    _Atomic int64_t stale;   /* a handle of the first tape, stale from the start */
    _Atomic int done;
    pyad_tape *shared;       /* reset and freed by the churner only */
    int churn_failures, stale_failures;
};

/* Resets the tape at the stale handle's registry index, then frees it and makes new tapes
   (which take other indexes), while the reader calls with the stale handle: before the tag
   lived in the registry, the reader read the tape's tag as it was written, or after free. */
static void *churn_tapes(void *p)
{
    struct churn *arg = p;
    for (int i = 0; i < ROUNDS; i++) {
        arg->churn_failures += pyad_tape_reset(arg->shared) != PYAD_OK;
        arg->churn_failures += pyad_push_leaf(arg->shared, 1.0) <= 0;
    }
    pyad_tape_free(arg->shared);
    for (int i = 0; i < ROUNDS / 10; i++) {
        pyad_tape *t = NULL;
        arg->churn_failures += pyad_tape_new(&t) != PYAD_OK;
        pyad_tape_free(t);
    }
    atomic_store(&arg->done, 1);
    return NULL;
}

static void *call_stale(void *p)
{
    struct churn *arg = p;
    const int64_t h = atomic_load(&arg->stale);
    while (!atomic_load(&arg->done)) {
        arg->stale_failures += pyad_exp(h) != -(int64_t)PYAD_STALE;
        arg->stale_failures += pyad_add_vc(h, 1.0) != -(int64_t)PYAD_STALE;
    }
    return NULL;
}

static void test_stale_handles_while_tapes_change(void)
{
    struct churn arg;
    pyad_tape *t = new_tape();
    const int64_t h = got(t, pyad_push_leaf(t, 1.0));
    /* the same registry index, a later generation: h is stale for it */
    CHECK(pyad_tape_reset(t) == PYAD_OK);
    atomic_init(&arg.stale, h);
    atomic_init(&arg.done, 0);
    arg.shared = t;
    arg.churn_failures = arg.stale_failures = 0;
    CHECK(pyad_exp(h) == -(int64_t)PYAD_STALE);
    pthread_t reader, churner;
    CHECK(pthread_create(&reader, NULL, call_stale, &arg) == 0);
    CHECK(pthread_create(&churner, NULL, churn_tapes, &arg) == 0);
    CHECK(pthread_join(churner, NULL) == 0 && pthread_join(reader, NULL) == 0);
    CHECK(arg.churn_failures == 0 && arg.stale_failures == 0);
}

void test_tape_threads(void)
{
    test_any_thread_uses_a_tape();
    test_threads_share_a_tape();
    test_opened_and_pin_current();
    test_adopting();
    test_error_messages_are_per_thread();
    test_stale_handles_while_tapes_change();
}
