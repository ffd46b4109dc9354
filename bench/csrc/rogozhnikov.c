/* Our re-creation of the C tape of A. Rogozhnikov, "Fastest Autograd in the West" (2023).
 *
 * The design, kept on purpose because it is the peer pyad.compile is measured against:
 *   - one struct per op: op type, number of inputs, output node, and int ins[8];
 *   - node values and adjoints live in two parallel double arrays indexed by node;
 *   - forward = one switch per op recomputing its output(s) from the input values;
 *   - reverse = one switch per op that recomputes the local partials from the stored values
 *     (softplus' derivative calls exp again, softmax's backward reads its own outputs); no
 *     partial is stored at record time.
 * Memory is grown by doubling; every append validates first and commits last, so a failed call
 * changes nothing.
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpeers.h"

typedef struct {
    int type;
    int n_in;
    int out; /* first output node; RZ_SOFTMAX writes n_in consecutive ones */
    int ins[RZ_MAX_INS];
} rz_op;

struct rz_tape {
    rz_op *ops;
    int n_ops, cap_ops;
    double *val, *grad;
    int n_nodes, cap_nodes;
    int *inputs; /* node index of input k */
    int n_inputs, cap_inputs;
    int output;
};

/* Allowed input counts per op type, indexed by RZ_ADD..RZ_SOFTMAX. */
static const int min_ins[RZ_N_OPTYPES] = {2, 2, 2, 1, 1, 1, 1, 1, 1};
static const int max_ins[RZ_N_OPTYPES] = {2, 2, 2, 1, 1, 1, 1, RZ_MAX_INS, RZ_MAX_INS};

const char *rz_strstatus(int status) {
    switch (status) {
    case RZ_OK: return "ok";
    case RZ_NOMEM: return "out of memory";
    case RZ_BADARG: return "bad argument (NULL tape, unknown op, wrong arity or input count)";
    case RZ_BADINDEX: return "node index outside the tape";
    case RZ_TOOBIG: return "tape too large";
    default: return "unknown status";
    }
}

rz_tape *rz_tape_new(void) {
    rz_tape *t = calloc(1, sizeof *t);
    if (t) t->output = -1;
    return t;
}

void rz_tape_free(rz_tape *t) {
    if (!t) return;
    free(t->ops);
    free(t->val);
    free(t->grad);
    free(t->inputs);
    free(t);
}

/* Make room for `need` elements of `size` bytes in *buf (capacity *cap); doubling growth. */
static int reserve(void **buf, int *cap, int need, size_t size) {
    if (need <= *cap) return RZ_OK;
    size_t c = *cap > 0 ? (size_t)*cap : 64;
    while (c < (size_t)need) c *= 2;
    if (c > INT_MAX) c = INT_MAX;
    if (c > SIZE_MAX / size) return RZ_NOMEM;
    void *p = realloc(*buf, c * size);
    if (!p) return RZ_NOMEM;
    *buf = p;
    *cap = (int)c;
    return RZ_OK;
}

/* Room for `extra` more nodes in both node arrays. */
static int reserve_nodes(rz_tape *t, int extra) {
    if (t->n_nodes > INT_MAX - extra) return RZ_TOOBIG;
    int need = t->n_nodes + extra;
    if (need <= t->cap_nodes) return RZ_OK;
    int cap_val = t->cap_nodes, cap_grad = t->cap_nodes;
    int rc = reserve((void **)&t->val, &cap_val, need, sizeof(double));
    if (rc == RZ_OK) rc = reserve((void **)&t->grad, &cap_grad, need, sizeof(double));
    /* Both arrays are at least the old capacity either way; keep the smaller new one. */
    t->cap_nodes = cap_val < cap_grad ? cap_val : cap_grad;
    return rc;
}

static int add_leaf(rz_tape *t, double value, int *node) {
    if (!t || !node) return RZ_BADARG;
    int rc = reserve_nodes(t, 1);
    if (rc != RZ_OK) return rc;
    int i = t->n_nodes;
    t->val[i] = value;
    t->grad[i] = 0.0;
    t->n_nodes = i + 1;
    *node = i;
    return RZ_OK;
}

int rz_tape_input(rz_tape *t, double value, int *node) {
    if (!t || !node) return RZ_BADARG;
    if (t->n_inputs == INT_MAX) return RZ_TOOBIG;
    int rc = reserve((void **)&t->inputs, &t->cap_inputs, t->n_inputs + 1, sizeof(int));
    if (rc != RZ_OK) return rc;
    rc = add_leaf(t, value, node);
    if (rc != RZ_OK) return rc;
    t->inputs[t->n_inputs++] = *node;
    return RZ_OK;
}

int rz_tape_const(rz_tape *t, double value, int *node) { return add_leaf(t, value, node); }

static inline double sigmoid(double a) {
    if (a >= 0.0) return 1.0 / (1.0 + exp(-a));
    double e = exp(a);
    return e / (1.0 + e);
}

/* The forward switch: recompute the output(s) of one op from its input values. */
static inline void forward_op(double *restrict v, const rz_op *op) {
    const int *in = op->ins;
    switch (op->type) {
    case RZ_ADD: v[op->out] = v[in[0]] + v[in[1]]; break;
    case RZ_SUB: v[op->out] = v[in[0]] - v[in[1]]; break;
    case RZ_MUL: v[op->out] = v[in[0]] * v[in[1]]; break;
    case RZ_LOG: v[op->out] = log(v[in[0]]); break;
    case RZ_SIN: v[op->out] = sin(v[in[0]]); break;
    case RZ_EXP: v[op->out] = exp(v[in[0]]); break;
    case RZ_SOFTPLUS: {
        double a = v[in[0]];
        v[op->out] = (a > 0.0 ? a : 0.0) + log1p(exp(-fabs(a)));
        break;
    }
    case RZ_SUM: {
        double s = 0.0;
        for (int j = 0; j < op->n_in; j++) s += v[in[j]];
        v[op->out] = s;
        break;
    }
    case RZ_SOFTMAX: {
        double m = v[in[0]];
        for (int j = 1; j < op->n_in; j++)
            if (v[in[j]] > m) m = v[in[j]];
        double s = 0.0;
        for (int j = 0; j < op->n_in; j++) {
            double e = exp(v[in[j]] - m);
            v[op->out + j] = e;
            s += e;
        }
        for (int j = 0; j < op->n_in; j++) v[op->out + j] /= s;
        break;
    }
    default: break; /* unreachable: rz_tape_append validates the type */
    }
}

/* The reverse switch: push the output adjoint(s) of one op to its inputs, recomputing the
 * local partials from the stored values. */
static inline void backward_op(const double *restrict v, double *restrict g, const rz_op *op) {
    const int *in = op->ins;
    double go = g[op->out];
    switch (op->type) {
    case RZ_ADD:
        g[in[0]] += go;
        g[in[1]] += go;
        break;
    case RZ_SUB:
        g[in[0]] += go;
        g[in[1]] -= go;
        break;
    case RZ_MUL:
        g[in[0]] += v[in[1]] * go;
        g[in[1]] += v[in[0]] * go;
        break;
    case RZ_LOG: g[in[0]] += go / v[in[0]]; break;
    case RZ_SIN: g[in[0]] += cos(v[in[0]]) * go; break;
    case RZ_EXP: g[in[0]] += v[op->out] * go; break;
    case RZ_SOFTPLUS: g[in[0]] += sigmoid(v[in[0]]) * go; break;
    case RZ_SUM:
        for (int j = 0; j < op->n_in; j++) g[in[j]] += go;
        break;
    case RZ_SOFTMAX: {
        /* d x_j = y_j * (g_j - sum_i g_i y_i) */
        const double *y = v + op->out;
        const double *gy = g + op->out;
        double dot = 0.0;
        for (int i = 0; i < op->n_in; i++) dot += gy[i] * y[i];
        for (int j = 0; j < op->n_in; j++) g[in[j]] += y[j] * (gy[j] - dot);
        break;
    }
    default: break;
    }
}

int rz_tape_append(rz_tape *t, int type, const int *ins, int n_in, int *out) {
    if (!t || !out || (n_in > 0 && !ins)) return RZ_BADARG;
    if (type < 0 || type >= RZ_N_OPTYPES) return RZ_BADARG;
    if (n_in < min_ins[type] || n_in > max_ins[type]) return RZ_BADARG;
    for (int j = 0; j < n_in; j++)
        if (ins[j] < 0 || ins[j] >= t->n_nodes) return RZ_BADINDEX;
    int n_out = type == RZ_SOFTMAX ? n_in : 1;
    if (t->n_ops == INT_MAX) return RZ_TOOBIG;
    int rc = reserve((void **)&t->ops, &t->cap_ops, t->n_ops + 1, sizeof(rz_op));
    if (rc == RZ_OK) rc = reserve_nodes(t, n_out);
    if (rc != RZ_OK) return rc;

    rz_op *op = &t->ops[t->n_ops];
    memset(op, 0, sizeof *op);
    op->type = type;
    op->n_in = n_in;
    op->out = t->n_nodes;
    memcpy(op->ins, ins, (size_t)n_in * sizeof(int));
    for (int j = 0; j < n_out; j++) t->grad[op->out + j] = 0.0;
    forward_op(t->val, op);

    t->n_nodes += n_out;
    t->n_ops += 1;
    t->output = t->n_nodes - 1;
    *out = op->out;
    return RZ_OK;
}

int rz_tape_set_output(rz_tape *t, int node) {
    if (!t) return RZ_BADARG;
    if (node < 0 || node >= t->n_nodes) return RZ_BADINDEX;
    t->output = node;
    return RZ_OK;
}

int rz_tape_n_ops(const rz_tape *t) { return t ? t->n_ops : 0; }
int rz_tape_n_nodes(const rz_tape *t) { return t ? t->n_nodes : 0; }
int rz_tape_n_inputs(const rz_tape *t) { return t ? t->n_inputs : 0; }

int rz_tape_set_inputs(rz_tape *t, const double *x, int n) {
    if (!t || n != t->n_inputs || (n > 0 && !x)) return RZ_BADARG;
    double *restrict v = t->val;
    const int *inputs = t->inputs;
    for (int k = 0; k < n; k++) v[inputs[k]] = x[k];
    return RZ_OK;
}

int rz_tape_forward(rz_tape *t) {
    if (!t) return RZ_BADARG;
    double *restrict v = t->val;
    const rz_op *ops = t->ops;
    int n = t->n_ops;
    for (int i = 0; i < n; i++) forward_op(v, &ops[i]);
    return RZ_OK;
}

int rz_tape_backward(rz_tape *t, int out_node) {
    if (!t) return RZ_BADARG;
    if (out_node < 0 || out_node >= t->n_nodes) return RZ_BADINDEX;
    const double *restrict v = t->val;
    double *restrict g = t->grad;
    const rz_op *ops = t->ops;
    memset(g, 0, (size_t)t->n_nodes * sizeof(double));
    g[out_node] = 1.0;
    for (int i = t->n_ops - 1; i >= 0; i--) backward_op(v, g, &ops[i]);
    return RZ_OK;
}

int rz_tape_replay(rz_tape *t, const double *x, int n, double *grad_out, double *value_out) {
    if (!t || !value_out || (n > 0 && !grad_out)) return RZ_BADARG;
    if (t->output < 0) return RZ_BADINDEX;
    int rc = rz_tape_set_inputs(t, x, n);
    if (rc != RZ_OK) return rc;
    rz_tape_forward(t);
    rz_tape_backward(t, t->output);
    for (int k = 0; k < n; k++) grad_out[k] = t->grad[t->inputs[k]];
    *value_out = t->val[t->output];
    return RZ_OK;
}

static int copy_nodes(const rz_tape *t, const double *src, double *out, int n) {
    if (!t || n < 0 || n > t->n_nodes || (n > 0 && !out)) return RZ_BADARG;
    if (n > 0) memcpy(out, src, (size_t)n * sizeof(double));
    return RZ_OK;
}

int rz_tape_values(const rz_tape *t, double *out, int n) {
    return copy_nodes(t, t ? t->val : NULL, out, n);
}

int rz_tape_grads(const rz_tape *t, double *out, int n) {
    return copy_nodes(t, t ? t->grad : NULL, out, n);
}
