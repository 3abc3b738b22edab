/*
 * policy.c - policies as weighted sums of scorers, and the scheduling pass.
 *
 * A policy is parsed from a spec such as "0.7*frag+0.3*bestfit" into up to
 * VGP_PLACE_MAX_TERMS terms, each a scorer (a built-in from the table below
 * or one supplied by the caller) with a weight and optional arguments. The
 * first term that chooses devices chooses them for every term; when none
 * does, the devices are packed the way the openb simulator packs them.
 *
 * vgp_place_schedule() filters every node, asks the terms to score each
 * feasible one, and keeps the best. A single term, or terms that need no
 * normalization, are scored in one pass with no allocation. Terms flagged
 * VGP_PLACE_SCORER_NORMALIZE in a multi-term policy have their scores
 * min-max normalized across the feasible nodes first (as Kubernetes
 * normalizes plugin scores), which takes a second pass over per-policy
 * scratch arrays sized to the cluster.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "place-internal.h"

struct vgp__term {
  const struct vgp_place_scorer_ops *ops;
  void *state;
  double weight;
};

struct vgp_place_policy {
  char name[256];
  struct vgp__term terms[VGP_PLACE_MAX_TERMS];
  unsigned n_terms;
  int picker;           /* index of the term that picks devices, or -1 */
  int two_pass;
  uint64_t placed;      /* requests scheduled so far */
  /* Scratch for two-pass scoring, grown to the cluster size. */
  uint32_t scratch_cap;
  double *raw;          /* scratch_cap * n_terms */
  struct vgp_place_assignment *cand;
  uint32_t *cand_node;
};

static const struct vgp_place_scorer_ops *const vgp__builtins[] = {
    &vgp__scorer_fgd,
    &vgp__scorer_frag,
    &vgp__scorer_bestfit,
    &vgp__scorer_random,
    &vgp__scorer_node_binpack,
    &vgp__scorer_node_spread,
    &vgp__scorer_device_binpack,
    &vgp__scorer_device_spread,
    &vgp__scorer_topology,
    &vgp__scorer_least_loaded,
};

/* Names that expand to a spec. */
static const struct {
  const char *name;
  const char *spec;
} vgp__aliases[] = {
    {"hami", "node-binpack+device-spread"},
    {"hami-spread", "node-spread+device-spread"},
    {"binpack", "node-binpack+device-binpack"},
    {"spread", "node-spread+device-spread"},
};

const struct vgp_place_scorer_ops *vgp_place_scorer_get(unsigned i) {
  if (i >= sizeof(vgp__builtins) / sizeof(vgp__builtins[0]))
    return NULL;
  return vgp__builtins[i];
}

const struct vgp_place_scorer_ops *vgp_place_scorer_find(const char *name) {
  for (unsigned i = 0; i < sizeof(vgp__builtins) / sizeof(vgp__builtins[0]); i++)
    if (strcmp(vgp__builtins[i]->name, name) == 0)
      return vgp__builtins[i];
  return NULL;
}

int vgp__arg_double(const char *args, const char *key, double *ret) {
  size_t klen = strlen(key);
  const char *p = args;

  if (args == NULL)
    return -ENOENT;
  while (*p != '\0') {
    while (*p == ',' || *p == ' ')
      p++;
    if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
      char *end;
      double v = strtod(p + klen + 1, &end);
      if (end == p + klen + 1 || (*end != '\0' && *end != ','))
        return -EINVAL;
      if (!isfinite(v))
        return -ERANGE;
      *ret = v;
      return 0;
    }
    while (*p != '\0' && *p != ',')
      p++;
  }
  return -ENOENT;
}

int vgp_place_policy_new_empty(const char *name,
                               struct vgp_place_policy **ret_policy) {
  struct vgp_place_policy *p;

  if (ret_policy == NULL)
    return -EINVAL;
  p = vgp__calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  snprintf(p->name, sizeof(p->name), "%s", name != NULL ? name : "custom");
  p->picker = -1;
  *ret_policy = p;
  return 0;
}

int vgp_place_policy_add_term(struct vgp_place_policy *p,
                              const struct vgp_place_scorer_ops *ops,
                              double weight, const char *args, uint64_t seed) {
  struct vgp__term *t;
  int r;

  if (p == NULL || ops == NULL || ops->score == NULL || !isfinite(weight))
    return -EINVAL;
  if (p->n_terms >= VGP_PLACE_MAX_TERMS)
    return -E2BIG;
  t = &p->terms[p->n_terms];
  memset(t, 0, sizeof(*t));
  t->ops = ops;
  t->weight = weight;
  if (ops->create != NULL) {
    /* Each term gets its own stream so adding a term does not change the
     * draws of the others. */
    r = ops->create(&t->state, args, seed + 0x9e3779b97f4a7c15ull * (p->n_terms + 1));
    if (r < 0)
      return r;
  }
  if (p->picker < 0 && (ops->flags & VGP_PLACE_SCORER_PICKS) != 0)
    p->picker = (int)p->n_terms;
  p->n_terms++;
  p->two_pass = 0;
  if (p->n_terms > 1)
    for (unsigned i = 0; i < p->n_terms; i++)
      if ((p->terms[i].ops->flags & VGP_PLACE_SCORER_NORMALIZE) != 0)
        p->two_pass = 1;
  return 0;
}

void vgp_place_policy_free(struct vgp_place_policy **policy) {
  struct vgp_place_policy *p;

  if (policy == NULL || *policy == NULL)
    return;
  p = *policy;
  for (unsigned i = 0; i < p->n_terms; i++)
    if (p->terms[i].ops->destroy != NULL)
      p->terms[i].ops->destroy(p->terms[i].state);
  vgp__free(p->raw);
  vgp__free(p->cand);
  vgp__free(p->cand_node);
  vgp__free(p);
  *policy = NULL;
}

const char *vgp_place_policy_name(const struct vgp_place_policy *p) {
  return p == NULL ? "" : p->name;
}

static void vgp__err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void vgp__err(char *err, size_t err_len, const char *fmt, ...) {
  va_list ap;
  if (err == NULL || err_len == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(err, err_len, fmt, ap);
  va_end(ap);
}

/* Parses one term "[weight*]name[args]" of length len at s. */
static int vgp__parse_term(struct vgp_place_policy *p, const char *s,
                           size_t len, uint64_t seed, char *err,
                           size_t err_len) {
  char buf[256], args[192];
  double weight = 1.0;
  char *name, *star, *br;

  if (len == 0 || len >= sizeof(buf)) {
    vgp__err(err, err_len, "empty or overlong policy term");
    return -EINVAL;
  }
  memcpy(buf, s, len);
  buf[len] = '\0';
  name = buf;
  args[0] = '\0';
  star = strchr(buf, '*');
  br = strchr(buf, '[');
  if (star != NULL && (br == NULL || star < br)) {
    char *end;
    *star = '\0';
    weight = strtod(buf, &end);
    if (end == buf || *end != '\0' || !isfinite(weight) || weight < 0) {
      vgp__err(err, err_len, "bad weight '%s'", buf);
      return -EINVAL;
    }
    name = star + 1;
    br = strchr(name, '[');
  }
  if (br != NULL) {
    size_t alen = strlen(br + 1);
    if (alen == 0 || br[alen] != ']' || alen > sizeof(args)) {
      vgp__err(err, err_len, "bad arguments in '%s'", name);
      return -EINVAL;
    }
    memcpy(args, br + 1, alen - 1);
    args[alen - 1] = '\0';
    *br = '\0';
  }
  const struct vgp_place_scorer_ops *ops = vgp_place_scorer_find(name);
  if (ops == NULL) {
    vgp__err(err, err_len, "unknown policy '%s'", name);
    return -EINVAL;
  }
  int r = vgp_place_policy_add_term(p, ops, weight, args[0] != '\0' ? args : NULL, seed);
  if (r == -EINVAL)
    vgp__err(err, err_len, "bad arguments for '%s'", name);
  else if (r == -E2BIG)
    vgp__err(err, err_len, "too many terms at '%s'", name);
  return r;
}

int vgp_place_policy_new(const char *spec, uint64_t seed,
                         struct vgp_place_policy **ret_policy, char *err,
                         size_t err_len) {
  struct vgp_place_policy *p = NULL;
  const char *expanded;
  int r;

  if (spec == NULL || ret_policy == NULL || spec[0] == '\0') {
    vgp__err(err, err_len, "empty policy");
    return -EINVAL;
  }
  if (strlen(spec) >= sizeof(p->name)) {
    vgp__err(err, err_len, "policy spec too long");
    return -E2BIG;
  }
  expanded = spec;
  for (unsigned i = 0; i < sizeof(vgp__aliases) / sizeof(vgp__aliases[0]); i++)
    if (strcmp(spec, vgp__aliases[i].name) == 0)
      expanded = vgp__aliases[i].spec;
  r = vgp_place_policy_new_empty(spec, &p);
  if (r < 0)
    return r;
  /* Terms are separated by '+' outside brackets. */
  const char *start = expanded;
  int depth = 0;
  for (const char *q = expanded;; q++) {
    if (*q == '[')
      depth++;
    else if (*q == ']')
      depth--;
    if ((*q == '+' && depth == 0) || *q == '\0') {
      r = vgp__parse_term(p, start, (size_t)(q - start), seed, err, err_len);
      if (r < 0) {
        vgp_place_policy_free(&p);
        return r;
      }
      if (*q == '\0')
        break;
      start = q + 1;
    }
  }
  *ret_policy = p;
  return 0;
}

void vgp_place_policy_observe(struct vgp_place_policy *p,
                              const struct vgp_place_cluster *c,
                              const struct vgp_place_request *req) {
  struct vgp__creq cr;
  struct vgp__ctx ctx;

  if (p == NULL || c == NULL || req == NULL)
    return;
  if (vgp__creq_compile(c, req, &cr) < 0)
    return;
  ctx.pub.cluster = c;
  ctx.pub.req = req;
  ctx.pub.pod_index = p->placed;
  ctx.creq = &cr;
  for (unsigned i = 0; i < p->n_terms; i++)
    if (p->terms[i].ops->observe != NULL)
      p->terms[i].ops->observe(p->terms[i].state, &ctx.pub);
}

static int vgp__scratch(struct vgp_place_policy *p, uint32_t n) {
  if (p->scratch_cap >= n)
    return 0;
  double *raw = vgp__malloc((size_t)n * VGP_PLACE_MAX_TERMS * sizeof(double));
  struct vgp_place_assignment *cand = vgp__malloc((size_t)n * sizeof(*cand));
  uint32_t *cand_node = vgp__malloc((size_t)n * sizeof(uint32_t));
  if (raw == NULL || cand == NULL || cand_node == NULL) {
    vgp__free(raw);
    vgp__free(cand);
    vgp__free(cand_node);
    return -ENOMEM;
  }
  vgp__free(p->raw);
  vgp__free(p->cand);
  vgp__free(p->cand_node);
  p->raw = raw;
  p->cand = cand;
  p->cand_node = cand_node;
  p->scratch_cap = n;
  return 0;
}

/* Scores one feasible node with every term. Returns 0 with the raw scores
 * in raw[] and the devices in *a, or -ENOSPC when a term refused. */
static int vgp__score_node(struct vgp_place_policy *p, struct vgp__ctx *ctx,
                           uint32_t node, uint32_t mask,
                           struct vgp_place_assignment *a, double *raw) {
  const struct vgp__creq *cr = ctx->creq;
  int r;

  a->node = node;
  a->n_devices = 0;
  if (p->picker < 0 && cr->req->num_devices > 0) {
    r = vgp__pick_packed(ctx->pub.cluster, cr, node, mask, a);
    if (r < 0)
      return r;
  } else if (cr->req->num_devices == 0) {
    vgp__assignment_charge(ctx->pub.cluster, cr, a);
  }
  if (p->picker >= 0) {
    struct vgp__term *t = &p->terms[p->picker];
    r = t->ops->score(t->state, &ctx->pub, node, mask, cr->req->num_devices > 0,
                      a, &raw[p->picker]);
    if (r < 0)
      return r;
    if (a->n_devices != cr->req->num_devices)
      return -ENOSPC;
    a->node = node;
    vgp__assignment_charge(ctx->pub.cluster, cr, a);
  }
  for (unsigned i = 0; i < p->n_terms; i++) {
    if ((int)i == p->picker)
      continue;
    struct vgp__term *t = &p->terms[i];
    r = t->ops->score(t->state, &ctx->pub, node, mask, 0, a, &raw[i]);
    if (r < 0)
      return r;
  }
  return 0;
}

static int vgp__better(const struct vgp_place_cluster *c, double score,
                       uint32_t node, double best, uint32_t best_node,
                       int have) {
  if (!have)
    return 1;
  if (score != best)
    return score > best;
  return c->nodes[node].tie_rank < c->nodes[best_node].tie_rank;
}

int vgp_place_schedule(struct vgp_place_policy *p,
                       const struct vgp_place_cluster *c,
                       const struct vgp_place_request *req,
                       uint8_t *node_reasons, size_t n_node_reasons,
                       struct vgp_place_result *ret_result) {
  struct vgp_place_result res;
  struct vgp__creq cr;
  struct vgp__ctx ctx;
  double raw[VGP_PLACE_MAX_TERMS];
  uint32_t n_cand = 0;
  int r, have = 0;

  if (p == NULL || c == NULL || req == NULL || ret_result == NULL)
    return -EINVAL;
  if (p->n_terms == 0)
    return -EINVAL;
  if (node_reasons != NULL && n_node_reasons < c->n_nodes)
    return -EINVAL;
  r = vgp__creq_compile(c, req, &cr);
  if (r < 0)
    return r;
  if (p->two_pass) {
    r = vgp__scratch(p, c->n_nodes);
    if (r < 0)
      return r;
  }
  memset(&res, 0, sizeof(res));
  ctx.pub.cluster = c;
  ctx.pub.req = req;
  ctx.pub.pod_index = p->placed;
  ctx.creq = &cr;
  for (unsigned i = 0; i < p->n_terms; i++)
    if (p->terms[i].ops->begin != NULL) {
      r = p->terms[i].ops->begin(p->terms[i].state, &ctx.pub);
      if (r < 0)
        return r;
    }

  for (uint32_t node = 0; node < c->n_nodes; node++) {
    uint32_t mask = 0;
    struct vgp_place_assignment a;
    enum vgp_place_reason reason = vgp__filter_sched(c, &cr, node, &mask);

    if (reason == VGP_PLACE_FITS) {
      struct vgp_place_assignment *slot = p->two_pass ? &p->cand[n_cand] : &a;
      double *rs = p->two_pass ? &p->raw[(size_t)n_cand * VGP_PLACE_MAX_TERMS] : raw;
      r = vgp__score_node(p, &ctx, node, mask, slot, rs);
      if (r == -ENOSPC)
        reason = VGP_PLACE_R_POLICY;
      else if (r < 0)
        return r;
      else if (p->two_pass)
        p->cand_node[n_cand++] = node;
      else {
        double total = 0;
        for (unsigned i = 0; i < p->n_terms; i++)
          total += p->terms[i].weight * raw[i];
        if (p->n_terms == 1)
          total = raw[0];
        if (vgp__better(c, total, node, res.score, res.assignment.node, have)) {
          res.score = total;
          res.assignment = a;
          have = 1;
        }
      }
    }
    if (node_reasons != NULL)
      node_reasons[node] = (uint8_t)reason;
    if (reason == VGP_PLACE_FITS)
      res.feasible++;
    else
      res.rejected[reason]++;
  }

  if (p->two_pass && n_cand > 0) {
    double lo[VGP_PLACE_MAX_TERMS], hi[VGP_PLACE_MAX_TERMS];
    for (unsigned i = 0; i < p->n_terms; i++) {
      lo[i] = INFINITY;
      hi[i] = -INFINITY;
    }
    for (uint32_t k = 0; k < n_cand; k++)
      for (unsigned i = 0; i < p->n_terms; i++) {
        double v = p->raw[(size_t)k * VGP_PLACE_MAX_TERMS + i];
        if (v < lo[i])
          lo[i] = v;
        if (v > hi[i])
          hi[i] = v;
      }
    for (uint32_t k = 0; k < n_cand; k++) {
      double total = 0;
      for (unsigned i = 0; i < p->n_terms; i++) {
        double v = p->raw[(size_t)k * VGP_PLACE_MAX_TERMS + i];
        if ((p->terms[i].ops->flags & VGP_PLACE_SCORER_NORMALIZE) != 0)
          v = hi[i] > lo[i] ? (v - lo[i]) / (hi[i] - lo[i]) : 0.0;
        total += p->terms[i].weight * v;
      }
      if (vgp__better(c, total, p->cand_node[k], res.score, res.assignment.node, have)) {
        res.score = total;
        res.assignment = p->cand[k];
        have = 1;
      }
    }
  }

  res.found = have;
  if (!have) {
    res.never_reason = vgp__never(c, &cr);
    res.never_fits = res.never_reason != VGP_PLACE_FITS;
  }
  p->placed++;
  *ret_result = res;
  return 0;
}
