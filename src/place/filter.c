/*
 * filter.c - requests: validation, compilation against a cluster, and the
 * per-node filter with its rejection reasons.
 *
 * The filter answers two questions for one node: does the request fit now,
 * and if not, why. Requests that only constrain CPU, memory, model and
 * compute (every request of the openb trace, and most HAMi requests) take
 * a fast path over the hot summary; anything else (UUID lists, device
 * memory, exclusivity, NUMA binding, compute-less shares) walks the devices
 * one by one. Both paths apply the same rules; the slow path is also what
 * names the reason when the fast path rejects on devices.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "place-internal.h"

static const char *const vgp__reason_names[VGP_PLACE_REASON__COUNT] = {
    [VGP_PLACE_FITS] = "fits",
    [VGP_PLACE_R_CPU] = "insufficient CPU",
    [VGP_PLACE_R_MEMORY] = "insufficient memory",
    [VGP_PLACE_R_SELECTOR] = "node selector mismatch",
    [VGP_PLACE_R_DEVICE_COUNT] = "too few devices on node",
    [VGP_PLACE_R_TYPE] = "device model not allowed",
    [VGP_PLACE_R_UUID] = "device UUID not allowed",
    [VGP_PLACE_R_UNHEALTHY] = "device unhealthy",
    [VGP_PLACE_R_EXCLUSIVE] = "device not idle (exclusive)",
    [VGP_PLACE_R_TENANTS] = "no sharing slot left",
    [VGP_PLACE_R_COMPUTE] = "insufficient device compute",
    [VGP_PLACE_R_DEV_MEMORY] = "insufficient device memory",
    [VGP_PLACE_R_NUMA] = "no NUMA node with enough devices",
    [VGP_PLACE_R_POLICY] = "refused by policy",
};

const char *vgp_place_reason_name(enum vgp_place_reason r) {
  if ((unsigned)r >= VGP_PLACE_REASON__COUNT)
    return "unknown";
  return vgp__reason_names[r];
}

/* Splits "a|b,c" into tokens (no copy; the text must outlive them). Empty
 * tokens and surrounding blanks are skipped. */
int vgp__list_parse(const char *text, struct vgp__token *tokens,
                    uint32_t *ret_n) {
  uint32_t n = 0;

  if (text == NULL) {
    *ret_n = 0;
    return 0;
  }
  if (strnlen(text, VGP_PLACE_LIST_MAX) >= VGP_PLACE_LIST_MAX)
    return -E2BIG;
  const char *p = text;
  while (*p != '\0') {
    while (*p == '|' || *p == ',' || *p == ' ' || *p == '\t')
      p++;
    if (*p == '\0')
      break;
    const char *start = p;
    while (*p != '\0' && *p != '|' && *p != ',')
      p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    if (n >= VGP__LIST_TOKENS)
      return -E2BIG;
    tokens[n].s = start;
    tokens[n].len = (uint32_t)(end - start);
    n++;
  }
  *ret_n = n;
  return 0;
}

int vgp_place_request_validate(const struct vgp_place_request *req) {
  struct vgp__token t[VGP__LIST_TOKENS];
  uint32_t n;
  const char *lists[5];
  int r;

  if (req == NULL)
    return -EINVAL;
  if (req->num_devices > VGP_PLACE_MAX_DEVICES)
    return -E2BIG;
  if (req->core_milli > VGP_PLACE_CORE_WHOLE || req->dev_mem_percent > 100)
    return -ERANGE;
  if (req->type_match != VGP_PLACE_MATCH_SUBSTRING &&
      req->type_match != VGP_PLACE_MATCH_EXACT)
    return -EINVAL;
  lists[0] = req->type_include;
  lists[1] = req->type_exclude;
  lists[2] = req->uuid_include;
  lists[3] = req->uuid_exclude;
  lists[4] = req->node_selector;
  for (int i = 0; i < 5; i++) {
    r = vgp__list_parse(lists[i], t, &n);
    if (r < 0)
      return r;
  }
  return 0;
}

static int vgp__token_eq(const struct vgp__token *t, const char *s) {
  return strlen(s) == t->len && memcmp(t->s, s, t->len) == 0;
}

/* Case-insensitive: does hay contain the token? (HAMi's use-gputype.) */
static int vgp__token_in(const struct vgp__token *t, const char *hay) {
  size_t n = strlen(hay);
  if (t->len == 0)
    return 1;
  for (size_t i = 0; i + t->len <= n; i++) {
    uint32_t j = 0;
    while (j < t->len && tolower((unsigned char)hay[i + j]) ==
                             tolower((unsigned char)t->s[j]))
      j++;
    if (j == t->len)
      return 1;
  }
  return 0;
}

static int vgp__model_matches(const struct vgp__token *t, const char *model,
                              enum vgp_place_match how) {
  return how == VGP_PLACE_MATCH_EXACT ? vgp__token_eq(t, model)
                                      : vgp__token_in(t, model);
}

int vgp__creq_compile(const struct vgp_place_cluster *c,
                      const struct vgp_place_request *req,
                      struct vgp__creq *ret) {
  struct vgp__token inc[VGP__LIST_TOKENS], exc[VGP__LIST_TOKENS];
  uint32_t n_inc, n_exc;
  int r;

  r = vgp_place_request_validate(req);
  if (r < 0)
    return r;
  memset(ret, 0, offsetof(struct vgp__creq, uuid_inc));
  ret->req = req;
  ret->core = req->core_milli;
  if ((r = vgp__list_parse(req->type_include, inc, &n_inc)) < 0 ||
      (r = vgp__list_parse(req->type_exclude, exc, &n_exc)) < 0 ||
      (r = vgp__list_parse(req->uuid_include, ret->uuid_inc, &ret->n_uuid_inc)) < 0 ||
      (r = vgp__list_parse(req->uuid_exclude, ret->uuid_exc, &ret->n_uuid_exc)) < 0 ||
      (r = vgp__list_parse(req->node_selector, ret->sel, &ret->n_sel)) < 0)
    return r;
  for (uint32_t m = 0; m < c->n_models; m++) {
    int ok = n_inc == 0;
    for (uint32_t i = 0; i < n_inc && !ok; i++)
      ok = vgp__model_matches(&inc[i], c->models[m], req->type_match);
    for (uint32_t i = 0; i < n_exc && ok; i++)
      ok = !vgp__model_matches(&exc[i], c->models[m], req->type_match);
    if (ok)
      ret->model_mask |= 1ull << m;
  }
  ret->fast = ret->n_uuid_inc == 0 && ret->n_uuid_exc == 0 &&
              req->dev_mem_bytes == 0 && req->dev_mem_percent == 0 &&
              !req->exclusive && !req->numa_bind &&
              (req->num_devices == 0 || req->core_milli > 0);
  return 0;
}

uint64_t vgp__dev_mem_need(const struct vgp__creq *cr,
                           const struct vgp__dev *d) {
  const struct vgp_place_request *req = cr->req;
  if (req->dev_mem_bytes > 0)
    return req->dev_mem_bytes;
  if (req->dev_mem_percent > 0)
    return d->mem_total / 100 * req->dev_mem_percent +
           d->mem_total % 100 * req->dev_mem_percent / 100;
  return 0;
}

static int vgp__selector_ok(const struct vgp_place_cluster *c,
                            const struct vgp__creq *cr, uint32_t node) {
  const struct vgp__node *n = &c->nodes[node];
  for (uint32_t i = 0; i < cr->n_sel; i++) {
    int found = 0;
    for (uint32_t l = 0; l < n->n_labels && !found; l++)
      found = vgp__token_eq(&cr->sel[i], n->labels + (size_t)l * VGP_PLACE_LABEL_MAX);
    if (!found)
      return 0;
  }
  return 1;
}

static int vgp__uuid_listed(const struct vgp__token *t, uint32_t n,
                            const char *uuid) {
  for (uint32_t i = 0; i < n; i++)
    if (vgp__token_eq(&t[i], uuid))
      return 1;
  return 0;
}

/* The static part of a device check: what no release could change. */
static enum vgp_place_reason vgp__dev_static(const struct vgp__creq *cr,
                                             const struct vgp__dev *d) {
  if ((cr->model_mask & (1ull << d->model)) == 0)
    return VGP_PLACE_R_TYPE;
  if (cr->n_uuid_inc > 0 && !vgp__uuid_listed(cr->uuid_inc, cr->n_uuid_inc, d->uuid))
    return VGP_PLACE_R_UUID;
  if (cr->n_uuid_exc > 0 && vgp__uuid_listed(cr->uuid_exc, cr->n_uuid_exc, d->uuid))
    return VGP_PLACE_R_UUID;
  if (cr->core > d->core_total)
    return VGP_PLACE_R_COMPUTE;
  if (d->mem_total > 0 && vgp__dev_mem_need(cr, d) > d->mem_total)
    return VGP_PLACE_R_DEV_MEMORY;
  return VGP_PLACE_FITS;
}

/* The full device check, against the device's current state. */
static enum vgp_place_reason vgp__dev_check(const struct vgp__creq *cr,
                                            const struct vgp__dev *d) {
  const struct vgp_place_request *req = cr->req;
  enum vgp_place_reason r = vgp__dev_static(cr, d);
  if (r != VGP_PLACE_FITS)
    return r;
  if (!d->healthy)
    return VGP_PLACE_R_UNHEALTHY;
  if (d->exclusive || (req->exclusive && d->tenants > 0))
    return VGP_PLACE_R_EXCLUSIVE;
  if (d->max_tenants != 0 && d->tenants >= d->max_tenants)
    return VGP_PLACE_R_TENANTS;
  if (d->core_total - d->core_used < cr->core)
    return VGP_PLACE_R_COMPUTE;
  /* HAMi refuses a compute-less share on a device whose compute is all
   * taken: such a tenant would only ever get time the owners leave. */
  if (cr->core == 0 && d->core_used >= d->core_total)
    return VGP_PLACE_R_COMPUTE;
  if (d->mem_total > 0 && vgp__dev_mem_need(cr, d) > d->mem_total - d->mem_used)
    return VGP_PLACE_R_DEV_MEMORY;
  return VGP_PLACE_FITS;
}

enum vgp_place_reason vgp__dev_reason(const struct vgp__creq *cr,
                                      const struct vgp__dev *d) {
  return vgp__dev_check(cr, d);
}

/* With NUMA binding, keeps in *mask only the devices of one NUMA node that
 * holds enough fitting devices: the one with the fewest such devices, so
 * larger groups stay whole for larger requests (ties: lowest NUMA id).
 * Returns 0, or -ENOSPC when no NUMA node has enough. */
static int vgp__numa_restrict(const struct vgp__node *n, uint32_t want,
                              uint32_t *mask) {
  uint32_t best_mask = 0, best_count = UINT32_MAX;
  uint32_t done = 0;
  for (uint32_t i = 0; i < n->n_dev; i++) {
    if ((*mask & (1u << i)) == 0 || (done & (1u << i)) != 0)
      continue;
    uint32_t group = 0, count = 0;
    for (uint32_t j = i; j < n->n_dev; j++)
      if ((*mask & (1u << j)) != 0 && n->dev[j].numa == n->dev[i].numa) {
        group |= 1u << j;
        count++;
      }
    done |= group;
    if (count >= want && count < best_count) {
      best_count = count;
      best_mask = group;
    }
  }
  if (best_mask == 0)
    return -ENOSPC;
  *mask = best_mask;
  return 0;
}

/* Picks the reason that rejected most devices (first in enum order on a
 * tie, which puts structural reasons before transient ones). */
static enum vgp_place_reason vgp__dominant(const uint32_t *counts) {
  enum vgp_place_reason best = VGP_PLACE_R_COMPUTE;
  uint32_t best_n = 0;
  for (int r = 1; r < VGP_PLACE_REASON__COUNT; r++)
    if (counts[r] > best_n) {
      best_n = counts[r];
      best = (enum vgp_place_reason)r;
    }
  return best;
}

static enum vgp_place_reason vgp__filter_slow(const struct vgp_place_cluster *c,
                                              const struct vgp__creq *cr,
                                              uint32_t node, int numa_restrict,
                                              uint32_t *ret_mask) {
  const struct vgp__node *n = &c->nodes[node];
  const struct vgp_place_request *req = cr->req;
  uint32_t counts[VGP_PLACE_REASON__COUNT] = {0};
  uint32_t mask = 0, fit = 0;

  if (cr->n_sel > 0 && !vgp__selector_ok(c, cr, node))
    return VGP_PLACE_R_SELECTOR;
  if (req->num_devices > n->n_dev)
    return VGP_PLACE_R_DEVICE_COUNT;
  if (req->num_devices > 0) {
    uint32_t typed = 0;
    for (uint32_t i = 0; i < n->n_dev; i++)
      if ((cr->model_mask & (1ull << n->dev[i].model)) != 0)
        typed++;
    if (typed < req->num_devices)
      return VGP_PLACE_R_TYPE;
  }
  if (n->cpu_total - n->cpu_used < req->cpu_milli)
    return VGP_PLACE_R_CPU;
  if (n->mem_total - n->mem_used < req->mem_bytes)
    return VGP_PLACE_R_MEMORY;
  if (req->num_devices == 0) {
    *ret_mask = 0;
    return VGP_PLACE_FITS;
  }
  for (uint32_t i = 0; i < n->n_dev; i++) {
    enum vgp_place_reason r = vgp__dev_check(cr, &n->dev[i]);
    if (r == VGP_PLACE_FITS) {
      mask |= 1u << i;
      fit++;
    } else {
      counts[r]++;
    }
  }
  if (fit < req->num_devices)
    return vgp__dominant(counts);
  if (req->numa_bind) {
    uint32_t m = mask;
    if (vgp__numa_restrict(n, req->num_devices, &m) < 0)
      return VGP_PLACE_R_NUMA;
    if (numa_restrict)
      mask = m;
  }
  *ret_mask = mask;
  return VGP_PLACE_FITS;
}

/* The filter proper. numa_restrict: see vgp__numa_restrict(). */
static enum vgp_place_reason vgp__filter_impl(const struct vgp_place_cluster *c,
                                              const struct vgp__creq *cr,
                                              uint32_t node, int numa_restrict,
                                              uint32_t *ret_mask) {
  const struct vgp__hot *h = &c->hot[node];
  const struct vgp_place_request *req = cr->req;
  uint32_t mask = 0, fit = 0;

  if (!cr->fast || cr->n_sel > 0)
    return vgp__filter_slow(c, cr, node, numa_restrict, ret_mask);
  if (req->num_devices > 0) {
    if (req->num_devices > h->n_dev)
      return VGP_PLACE_R_DEVICE_COUNT;
    if (h->model != VGP__MODEL_MIXED && (cr->model_mask & (1ull << h->model)) == 0)
      return VGP_PLACE_R_TYPE;
  }
  if (h->cpu_free < req->cpu_milli)
    return VGP_PLACE_R_CPU;
  if (h->mem_free < req->mem_bytes)
    return VGP_PLACE_R_MEMORY;
  if (req->num_devices == 0) {
    *ret_mask = 0;
    return VGP_PLACE_FITS;
  }
  if (h->max_free >= cr->core) {
    if (h->model != VGP__MODEL_MIXED) {
      for (uint32_t i = 0; i < h->n_dev; i++)
        if (h->core_free[i] >= cr->core) {
          mask |= 1u << i;
          fit++;
        }
    } else {
      const struct vgp__node *n = &c->nodes[node];
      for (uint32_t i = 0; i < h->n_dev; i++)
        if (h->core_free[i] >= cr->core &&
            (cr->model_mask & (1ull << n->dev[i].model)) != 0) {
          mask |= 1u << i;
          fit++;
        }
    }
  }
  if (fit >= req->num_devices) {
    *ret_mask = mask;
    return VGP_PLACE_FITS;
  }
  /* Rejected on devices: let the device walk name the reason. */
  return vgp__filter_slow(c, cr, node, numa_restrict, ret_mask);
}

enum vgp_place_reason vgp__filter(const struct vgp_place_cluster *c,
                                  const struct vgp__creq *cr, uint32_t node,
                                  uint32_t *ret_mask) {
  uint32_t mask = 0;
  enum vgp_place_reason r = vgp__filter_impl(c, cr, node, 0, &mask);
  if (ret_mask != NULL)
    *ret_mask = r == VGP_PLACE_FITS ? mask : 0;
  return r;
}

enum vgp_place_reason vgp__filter_sched(const struct vgp_place_cluster *c,
                                        const struct vgp__creq *cr,
                                        uint32_t node, uint32_t *ret_mask) {
  uint32_t mask = 0;
  enum vgp_place_reason r = vgp__filter_impl(c, cr, node, 1, &mask);
  *ret_mask = r == VGP_PLACE_FITS ? mask : 0;
  return r;
}

enum vgp_place_reason vgp_place_filter_node(const struct vgp_place_cluster *c,
                                            const struct vgp_place_request *req,
                                            uint32_t node, uint32_t *ret_mask) {
  struct vgp__creq cr;

  if (c == NULL || req == NULL || node >= c->n_nodes)
    return VGP_PLACE_R_POLICY;
  if (vgp__creq_compile(c, req, &cr) < 0)
    return VGP_PLACE_R_POLICY;
  return vgp__filter(c, &cr, node, ret_mask);
}

/* Would the request fit some node if that node were empty and healthy?
 * Returns VGP_PLACE_FITS, or why not. The reason comes from the nodes that
 * came closest (passed the most checks): "insufficient CPU" on the only
 * nodes with enough devices says more than "too few devices" on all the
 * others. */
enum vgp_place_reason vgp__never(const struct vgp_place_cluster *c,
                                 const struct vgp__creq *cr) {
  const struct vgp_place_request *req = cr->req;
  uint32_t counts[VGP_PLACE_REASON__COUNT] = {0};
  int deepest = -1;

  if (c->n_nodes == 0)
    return VGP_PLACE_R_DEVICE_COUNT;
  for (uint32_t node = 0; node < c->n_nodes; node++) {
    const struct vgp__node *n = &c->nodes[node];
    enum vgp_place_reason r = VGP_PLACE_FITS;
    int stage = 0;
    uint32_t mask = 0, fit = 0;
    uint32_t dev_counts[VGP_PLACE_REASON__COUNT] = {0};

    if (cr->n_sel > 0 && !vgp__selector_ok(c, cr, node)) {
      r = VGP_PLACE_R_SELECTOR;
    } else if (req->num_devices > n->n_dev) {
      r = VGP_PLACE_R_DEVICE_COUNT;
      stage = 1;
    } else {
      stage = 2;
      if (req->num_devices > 0) {
        for (uint32_t i = 0; i < n->n_dev; i++) {
          enum vgp_place_reason dr = vgp__dev_static(cr, &n->dev[i]);
          if (dr == VGP_PLACE_FITS) {
            mask |= 1u << i;
            fit++;
          } else {
            dev_counts[dr]++;
          }
        }
        if (fit < req->num_devices) {
          r = vgp__dominant(dev_counts);
        } else if (req->numa_bind &&
                   vgp__numa_restrict(n, req->num_devices, &mask) < 0) {
          r = VGP_PLACE_R_NUMA;
          stage = 3;
        }
      }
      if (r == VGP_PLACE_FITS) {
        stage = 4;
        if (n->cpu_total < req->cpu_milli) {
          r = VGP_PLACE_R_CPU;
        } else if (n->mem_total < req->mem_bytes) {
          r = VGP_PLACE_R_MEMORY;
          stage = 5;
        }
      }
    }
    if (r == VGP_PLACE_FITS)
      return VGP_PLACE_FITS;
    if (stage > deepest) {
      memset(counts, 0, sizeof(counts));
      deepest = stage;
    }
    if (stage == deepest)
      counts[r]++;
  }
  return vgp__dominant(counts);
}

int vgp__pick_packed(const struct vgp_place_cluster *c,
                     const struct vgp__creq *cr, uint32_t node, uint32_t mask,
                     struct vgp_place_assignment *a) {
  const struct vgp__hot *h = &c->hot[node];
  const struct vgp__node *n = &c->nodes[node];
  uint32_t want = cr->req->num_devices;

  a->node = node;
  a->n_devices = 0;
  if (want == 1) {
    int best = -1;
    for (uint32_t i = 0; i < n->n_dev; i++)
      if ((mask & (1u << i)) != 0 &&
          (best < 0 || h->core_free[i] < h->core_free[best]))
        best = (int)i;
    if (best < 0)
      return -ENOSPC;
    a->devices[a->n_devices++] = (uint8_t)best;
  } else {
    for (uint32_t i = 0; i < n->n_dev && a->n_devices < want; i++)
      if ((mask & (1u << i)) != 0)
        a->devices[a->n_devices++] = (uint8_t)i;
    if (a->n_devices < want)
      return -ENOSPC;
  }
  vgp__assignment_charge(c, cr, a);
  return 0;
}

void vgp__assignment_charge(const struct vgp_place_cluster *c,
                            const struct vgp__creq *cr,
                            struct vgp_place_assignment *a) {
  const struct vgp__node *n = &c->nodes[a->node];
  a->core_milli = cr->core;
  for (uint32_t i = 0; i < a->n_devices; i++)
    a->dev_mem_bytes[i] = vgp__dev_mem_need(cr, &n->dev[a->devices[i]]);
}
