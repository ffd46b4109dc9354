/* Hand-written value and gradient of workloads W1, W2 and W5 (see bench/cpeers.h).
 *
 * These are the floor for every tape: no op records, no dispatch, the adjoint code derived by
 * hand and fused into the loops, adjoints kept in registers where the data flow allows. Each
 * function computes the value in the workload's own left-to-right order, so the value agrees
 * with pyad.reference bit for bit; gradients agree to rounding.
 */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "cpeers.h"

/* W1: f = sum_i log(x_i) + x_i x_{i+1} - sin(x_{i+1}).
 * df/dx_i = [1/x_i + x_{i+1}] (term i)  +  [x_{i-1} - cos(x_i)] (term i-1);
 * `carry` holds the second bracket from the previous iteration, so each grad[i] is written once.
 */
int hw_w1(const double *x, int n, double *grad_out, double *value_out) {
    if (!x || !grad_out || !value_out || n < 1) return RZ_BADARG;
    double acc = 0.0, carry = 0.0;
    for (int i = 0; i + 1 < n; i++) {
        double a = x[i], b = x[i + 1];
        acc = acc + ((log(a) + a * b) - sin(b));
        grad_out[i] = carry + (1.0 / a + b);
        carry = a - cos(b);
    }
    grad_out[n - 1] = carry;
    *value_out = acc;
    return RZ_OK;
}

/* W2: f = sum_i 100 t_i^2 + u_i^2 with t_i = x_{i+1} - x_i^2, u_i = 1 - x_i.
 * df/dx_i = [-400 x_i t_i - 2 u_i] (term i)  +  [200 t_{i-1}] (term i-1). The loop is bound by
 * the latency of the ordered sum; the gradient work hides under it. */
int hw_w2(const double *x, int n, double *grad_out, double *value_out) {
    if (!x || !grad_out || !value_out || n < 1) return RZ_BADARG;
    double acc = 0.0, carry = 0.0;
    for (int i = 0; i + 1 < n; i++) {
        double a = x[i], b = x[i + 1];
        double t = b - a * a;
        double u = 1.0 - a;
        acc = acc + (100.0 * (t * t) + u * u);
        grad_out[i] = carry + (-400.0 * a * t - 2.0 * u);
        carry = 200.0 * t;
    }
    grad_out[n - 1] = carry;
    *value_out = acc;
    return RZ_OK;
}

/* W5: 100 inputs, then op k by k % 4 on the node list (negative indices count from its end):
 *   0: softplus(nodes[-10])       1: nodes[-30] + nodes[-25] + nodes[-20] + nodes[-15]
 *   2: nodes[-20] * nodes[-10]    3: softmax(nodes[-4:]), four outputs.
 * A full group of four ops starting with e nodes appends nodes e .. e+6; the helpers below
 * take e, the node count before the group, and are shared by full groups and the tail. */
enum { W5_INPUTS = 100, W5_GROUP_NODES = 7 };

static inline double sigmoid(double a) {
    if (a >= 0.0) return 1.0 / (1.0 + exp(-a));
    double e = exp(a);
    return e / (1.0 + e);
}

static inline void f_softplus(double *v, int e) {
    double a = v[e - 10];
    v[e] = (a > 0.0 ? a : 0.0) + log1p(exp(-fabs(a)));
}
static inline void f_sum(double *v, int e) { /* node e+1 */
    v[e + 1] = 0.0 + v[e - 29] + v[e - 24] + v[e - 19] + v[e - 14];
}
static inline void f_mul(double *v, int e) { /* node e+2 */
    v[e + 2] = v[e - 18] * v[e - 8];
}
static inline void f_softmax(double *v, int e) { /* inputs e-1 .. e+2, outputs e+3 .. e+6 */
    const double *in = v + e - 1;
    double *y = v + e + 3;
    double m = in[0];
    for (int j = 1; j < 4; j++)
        if (in[j] > m) m = in[j];
    double s = 0.0;
    for (int j = 0; j < 4; j++) {
        y[j] = exp(in[j] - m);
        s += y[j];
    }
    for (int j = 0; j < 4; j++) y[j] /= s;
}

static inline void b_softplus(const double *v, double *g, int e) {
    g[e - 10] += sigmoid(v[e - 10]) * g[e];
}
static inline void b_sum(double *g, int e) {
    double go = g[e + 1];
    g[e - 29] += go;
    g[e - 24] += go;
    g[e - 19] += go;
    g[e - 14] += go;
}
static inline void b_mul(const double *v, double *g, int e) {
    double go = g[e + 2];
    g[e - 18] += v[e - 8] * go;
    g[e - 8] += v[e - 18] * go;
}
static inline void b_softmax(const double *v, double *g, int e) {
    const double *y = v + e + 3;
    const double *gy = g + e + 3;
    double dot = gy[0] * y[0] + gy[1] * y[1] + gy[2] * y[2] + gy[3] * y[3];
    for (int j = 0; j < 4; j++) g[e - 1 + j] += y[j] * (gy[j] - dot);
}

int hw_w5_n_nodes(int n_ops) {
    if (n_ops < 0) return -1;
    int groups = n_ops / 4, tail = n_ops % 4;
    if (groups > (INT_MAX - W5_INPUTS - tail) / W5_GROUP_NODES) return -1;
    return W5_INPUTS + groups * W5_GROUP_NODES + tail; /* a tail has no softmax */
}

int hw_w5(const double *x, int n_x, int n_ops, double *vals, double *adj, int n_nodes,
          double *grad_out, double *value_out) {
    if (!x || !vals || !adj || !grad_out || !value_out) return RZ_BADARG;
    if (n_x != W5_INPUTS || n_ops < 0 || n_nodes != hw_w5_n_nodes(n_ops)) return RZ_BADARG;
    int groups = n_ops / 4, tail = n_ops % 4;
    int tail_e = W5_INPUTS + groups * W5_GROUP_NODES;

    memcpy(vals, x, W5_INPUTS * sizeof(double));
    for (int e = W5_INPUTS; e < tail_e; e += W5_GROUP_NODES) {
        f_softplus(vals, e);
        f_sum(vals, e);
        f_mul(vals, e);
        f_softmax(vals, e);
    }
    if (tail > 0) f_softplus(vals, tail_e);
    if (tail > 1) f_sum(vals, tail_e);
    if (tail > 2) f_mul(vals, tail_e);

    memset(adj, 0, (size_t)n_nodes * sizeof(double));
    adj[n_nodes - 1] = 1.0;
    if (tail > 2) b_mul(vals, adj, tail_e);
    if (tail > 1) b_sum(adj, tail_e);
    if (tail > 0) b_softplus(vals, adj, tail_e);
    for (int e = tail_e - W5_GROUP_NODES; e >= W5_INPUTS; e -= W5_GROUP_NODES) {
        b_softmax(vals, adj, e);
        b_mul(vals, adj, e);
        b_sum(adj, e);
        b_softplus(vals, adj, e);
    }

    memcpy(grad_out, adj, W5_INPUTS * sizeof(double));
    *value_out = vals[n_nodes - 1];
    return RZ_OK;
}
