/*
 * fuzz_load.c - libFuzzer harness for loading saved programs (pyad_program_load/save).
 *
 * The input's first byte sizes the message buffer (low 7 bits) and, when its top bit is set,
 * has the harness re-seal the checksum of the rest first: random damage almost never passes a
 * checksum, and re-sealed inputs reach the structural checks behind it. The rest is handed to
 * pyad_program_load as a saved program. Loading must either fail with a known status and a
 * terminated message, or give a program that behaves: info, work sizes, runs at points whose
 * coordinates are taken from the input, hvp when it has one output, and a save whose bytes load
 * again into a program that saves to the same bytes, reports the same info and gives the same
 * values.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h" /* pyad__saved_seal */
#include "fuzz.h"
#include "pyad.h"

enum { MAXWORK = 1 << 20, MAXIO = 1 << 12, MAXSAVE = 1 << 24 };

/* Doubles for the points, read cyclically from the input so every input gives some. */
static double coordinate(const uint8_t *data, size_t size, size_t *at)
{
    uint8_t b[8] = {0};
    for (int k = 0; k < 8 && size > 0; k++)
        b[k] = data[(*at)++ % size];
    double d;
    memcpy(&d, b, sizeof d);
    return d;
}

/* The saved form of p, or NULL; its size into *n. */
static uint8_t *save(const pyad_program *p, int64_t *n)
{
    int64_t need = -1;
    int st = pyad_program_save(p, NULL, 0, &need);
    CHECK(known(st));
    if (need <= 0 || need > MAXSAVE)
        return NULL;
    uint8_t *buf = malloc((size_t)need);
    CHECK(buf != NULL);
    int64_t got = -1;
    st = pyad_program_save(p, buf, need, &got);
    CHECK(st == PYAD_OK && got == need);
    if (need > 1) { /* one byte short must be refused, not overrun */
        int64_t short_size = -1;
        CHECK(pyad_program_save(p, buf, need - 1, &short_size) != PYAD_OK);
    }
    *n = need;
    return buf;
}

/* Run p at k points from the input: values into values[k * nout] (plain checks only). */
static void run(const pyad_program *p, const int64_t *info, const double *x, int64_t k,
                double *values)
{
    const int64_t nin = info[0], nout = info[1], nguard = info[6];
    const int64_t need = pyad_program_work(p, k, 0);
    if (need < 1 || need > MAXWORK)
        return;
    double *work = malloc((size_t)need * sizeof *work);
    double *seeds = malloc(((size_t)nout + 1) * sizeof *seeds);
    double *grads = malloc(((size_t)(k * nin) + 1) * sizeof *grads);
    int64_t guards[4] = {-1, -1, -1, -1};
    CHECK(work && seeds && grads);
    for (int64_t j = 0; j < nout; j++)
        seeds[j] = 1.0;
    CHECK(pyad_program_run(p, k, x, 1, seeds, values, grads, guards, work, need) == PYAD_OK);
    for (int64_t q = 0; q < k; q++)
        CHECK(guards[q] >= 0 && guards[q] <= nguard);
    /* a buffer too small for even one point is refused */
    CHECK(pyad_program_run(p, k, x, 0, NULL, values, NULL, NULL, work,
                           pyad_program_work(p, 1, 0) - 1) == PYAD_MISUSE);
    free(work);
    free(seeds);
    free(grads);
    if (nout != 1)
        return;
    const int64_t nh = pyad_program_work(p, 1, 1);
    if (nh < 1 || nh > MAXWORK)
        return;
    work = malloc((size_t)nh * sizeof *work);
    double *v = malloc(((size_t)nin + 1) * sizeof *v);
    double *hv = malloc(((size_t)nin + 1) * sizeof *hv);
    CHECK(work && v && hv);
    for (int64_t i = 0; i < nin; i++)
        v[i] = i == 0 ? 1.0 : 0.0;
    double value;
    int64_t guard = -1;
    CHECK(pyad_program_hvp(p, x, 1, v, &value, NULL, hv, &guard, work, nh) == PYAD_OK);
    CHECK(guard >= 0 && guard <= nguard && same_bits(value, values[0]));
    CHECK(pyad_program_hvp(p, x, 1, v, &value, NULL, hv, &guard, work, nh - 1) == PYAD_MISUSE);
    free(work);
    free(v);
    free(hv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const int64_t msgcap = (data[0] & 0x7f) % 80;
    char msg[80];
    memset(msg, 'x', sizeof msg);
    /* A program may declare up to 2^28 inputs (header bytes 12-15), and loading one costs 5
       bytes per input slot: seconds under ASan at the top of the range. The harness keeps to
       2^20 inputs so that every run is fast; above that the checks are the same ones. */
    if (size >= 17) {
        const uint32_t nin = (uint32_t)data[13] | (uint32_t)data[14] << 8 |
                             (uint32_t)data[15] << 16 | (uint32_t)data[16] << 24;
        if (nin > (1u << 20))
            return 0;
    }
    uint8_t *body = malloc(size); /* a copy, so the re-seal need not write to libFuzzer's input */
    CHECK(body != NULL);
    memcpy(body, data + 1, size - 1);
    if (data[0] & 0x80)
        pyad__saved_seal(body, (int64_t)size - 1); /* refused when too short: then as is */
    pyad_program *p = NULL;
    const int st = pyad_program_load(body, (int64_t)size - 1, &p, msgcap ? msg : NULL, msgcap);
    free(body);
    CHECK(known(st) && st != PYAD_SEGMENT);
    if (st != PYAD_OK) {
        CHECK(p == NULL);
        if (msgcap > 0)
            CHECK(memchr(msg, '\0', (size_t)msgcap) != NULL);
        return 0;
    }
    CHECK(p != NULL);
    int64_t info[8];
    CHECK(pyad_program_info(p, info) == PYAD_OK);
    CHECK(info[0] >= 0 && info[1] >= 0 && info[6] >= 0 && info[7] > 0);
    const int64_t nin = info[0], nout = info[1];
    const int64_t k = 1 + data[0] % 3;
    if (k * nin > MAXIO || k * nout > MAXIO) {
        pyad_program_free(p);
        return 0;
    }
    double *x = malloc(((size_t)(k * nin) + 1) * sizeof *x);
    double *values = calloc((size_t)(k * nout) + 1, sizeof *values);
    double *again = calloc((size_t)(k * nout) + 1, sizeof *again);
    CHECK(x && values && again);
    size_t at = 1;
    for (int64_t i = 0; i < k * nin; i++)
        x[i] = coordinate(data, size, &at);
    run(p, info, x, k, values);

    int64_t n1 = 0, n2 = 0;
    uint8_t *saved = save(p, &n1);
    if (saved != NULL) {
        pyad_program *q = NULL;
        CHECK(pyad_program_load(saved, n1, &q, NULL, 0) == PYAD_OK && q != NULL);
        int64_t qinfo[8];
        CHECK(pyad_program_info(q, qinfo) == PYAD_OK);
        CHECK(memcmp(info, qinfo, 7 * sizeof *info) == 0); /* bytes held may differ */
        uint8_t *resaved = save(q, &n2);
        CHECK(resaved != NULL && n1 == n2 && memcmp(saved, resaved, (size_t)n1) == 0);
        run(q, qinfo, x, k, again);
        for (int64_t j = 0; j < k * nout; j++)
            CHECK(same_bits(values[j], again[j]));
        free(resaved);
        pyad_program_free(q);
        free(saved);
    }
    free(x);
    free(values);
    free(again);
    pyad_program_free(p);
    return 0;
}
