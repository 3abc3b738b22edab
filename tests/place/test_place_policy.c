/*
 * test_place_policy.c - each policy on small hand-made clusters whose best
 * answer is known: packing, fragmentation, the share packing plan,
 * stranding, scarce models, topology, NUMA, HAMi's binpack/spread,
 * measured load; plus the policy language, determinism, and a scorer
 * plugged in from outside the library.
 */
#include <errno.h>
#include <string.h>

#include "vgp_test.h"
#include "vgpool/place.h"

struct node_def {
  const char *name;
  uint64_t cpu;
  unsigned gpus;
  const char *model;
};

static struct vgp_place_cluster *cluster_of(const struct node_def *defs, unsigned n) {
  struct vgp_place_cluster *c = NULL;
  ASSERT_OK(vgp_place_cluster_new(&c));
  for (unsigned i = 0; i < n; i++) {
    struct vgp_place_node_spec spec = {.name = defs[i].name, .cpu_milli = defs[i].cpu,
                                       .mem_bytes = 1ull << 40};
    uint32_t node;
    ASSERT_OK(vgp_place_node_add(c, &spec, &node));
    for (unsigned d = 0; d < defs[i].gpus; d++) {
      struct vgp_place_device_spec dev = {.model = defs[i].model, .numa = -1, .healthy = 1};
      ASSERT_OK(vgp_place_device_add(c, node, &dev, NULL));
    }
  }
  return c;
}

/* Puts core milli on one device, as an earlier tenant. */
static void occupy(struct vgp_place_cluster *c, uint32_t node, uint8_t dev, uint32_t core) {
  struct vgp_place_request req = {.num_devices = 1, .core_milli = core};
  struct vgp_place_assignment a = {.node = node, .n_devices = 1, .devices = {dev}};
  ASSERT_OK(vgp_place_commit(c, &req, &a, NULL));
}

static struct vgp_place_result place(struct vgp_place_policy *p, struct vgp_place_cluster *c,
                                     const struct vgp_place_request *req) {
  struct vgp_place_result res;
  ASSERT_OK(vgp_place_schedule(p, c, req, NULL, 0, &res));
  ASSERT_TRUE(res.found);
  return res;
}

static struct vgp_place_policy *policy(const char *spec) {
  struct vgp_place_policy *p = NULL;
  char err[128] = "";
  if (vgp_place_policy_new(spec, 7, &p, err, sizeof(err)) != 0)
    vgp_test_fail(__FILE__, __LINE__, "policy '%s': %s", spec, err);
  return p;
}

/* Tells the policy about n requests of one shape (what it has "seen"). */
static void observe(struct vgp_place_policy *p, struct vgp_place_cluster *c, unsigned n,
                    struct vgp_place_request req) {
  for (unsigned i = 0; i < n; i++)
    vgp_place_policy_observe(p, c, &req);
}

VGP_TEST(bestfit_packs_the_fullest_node_and_tightest_device) {
  static const struct node_def defs[] = {
      {"a", 64000, 8, "G2"}, {"b", 64000, 8, "G2"}, {"c", 64000, 8, "G2"}};
  struct vgp_place_cluster *c = cluster_of(defs, 3);
  occupy(c, 0, 0, 1000);
  occupy(c, 0, 1, 1000);
  occupy(c, 2, 3, 300);
  struct vgp_place_policy *p = policy("bestfit");
  struct vgp_place_request req = {.num_devices = 1, .core_milli = 600};
  struct vgp_place_result r = place(p, c, &req);
  ASSERT_EQ_U64(r.assignment.node, 0);
  ASSERT_EQ_U64(r.assignment.devices[0], 2); /* lowest idle device */
  /* On c, a share goes to the device with the least free compute. */
  req.node_selector = NULL;
  req.core_milli = 700;
  uint32_t mask;
  ASSERT_EQ_INT(vgp_place_filter_node(c, &req, 2, &mask), VGP_PLACE_FITS);
  vgp_place_policy_free(&p);
  p = policy("bestfit");
  occupy(c, 0, 2, 1000);
  occupy(c, 0, 3, 1000);
  occupy(c, 0, 4, 1000);
  occupy(c, 0, 5, 1000);
  occupy(c, 0, 6, 1000);
  occupy(c, 0, 7, 1000); /* a is full */
  r = place(p, c, &req);
  ASSERT_EQ_U64(r.assignment.node, 2);
  ASSERT_EQ_U64(r.assignment.devices[0], 3);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

VGP_TEST(fragmentation_policies_fill_the_gap_that_fits) {
  static const struct node_def defs[] = {{"x", 64000, 2, "G2"}, {"y", 64000, 2, "G2"}};
  const char *specs[] = {"fgd", "frag", "fgd[exact=1]"};
  for (unsigned k = 0; k < 3; k++) {
    struct vgp_place_cluster *c = cluster_of(defs, 2);
    occupy(c, 1, 1, 500); /* y: one device half used */
    struct vgp_place_policy *p = policy(specs[k]);
    observe(p, c, 10, (struct vgp_place_request){.cpu_milli = 1000, .num_devices = 1, .core_milli = 500});
    observe(p, c, 10, (struct vgp_place_request){.cpu_milli = 1000, .num_devices = 1, .core_milli = 1000});
    struct vgp_place_request req = {.cpu_milli = 1000, .num_devices = 1, .core_milli = 500};
    struct vgp_place_result r = place(p, c, &req);
    if (r.assignment.node != 1 || r.assignment.devices[0] != 1)
      vgp_test_fail(__FILE__, __LINE__, "%s put the share on node %u device %u", specs[k],
                    r.assignment.node, r.assignment.devices[0]);
    vgp_place_policy_free(&p);
    vgp_place_cluster_free(&c);
  }
}

VGP_TEST(frag_pairs_shares_by_its_plan) {
  /* With shares of 470, 320 and 650 seen, the plan pairs 470 with 470 and
   * 320 with 650. A 470 must go next to another 470 (leaving 60), not into
   * the 680 a 320 left (leaving 210, which nothing seen would fill), even
   * though that gap is on the node ranked first. */
  static const struct node_def defs[] = {{"p", 64000, 2, "G2"}, {"q", 64000, 2, "G2"}};
  struct vgp_place_cluster *c = cluster_of(defs, 2);
  occupy(c, 0, 0, 320);
  occupy(c, 1, 0, 470);
  struct vgp_place_policy *p = policy("frag");
  observe(p, c, 40, (struct vgp_place_request){.cpu_milli = 1000, .num_devices = 1, .core_milli = 470});
  observe(p, c, 20, (struct vgp_place_request){.cpu_milli = 1000, .num_devices = 1, .core_milli = 320});
  observe(p, c, 20, (struct vgp_place_request){.cpu_milli = 1000, .num_devices = 1, .core_milli = 650});
  struct vgp_place_request req = {.cpu_milli = 1000, .num_devices = 1, .core_milli = 470};
  struct vgp_place_result r = place(p, c, &req);
  ASSERT_EQ_U64(r.assignment.node, 1);
  ASSERT_EQ_U64(r.assignment.devices[0], 0);
  /* And a 650 completes the 320. */
  req.core_milli = 650;
  r = place(p, c, &req);
  ASSERT_EQ_U64(r.assignment.node, 0);
  ASSERT_EQ_U64(r.assignment.devices[0], 0);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

VGP_TEST(frag_does_not_strand_gpus_for_lack_of_cpu) {
  /* GPU work needs 8 cores per GPU. s has 8 idle GPUs and 16 cores: a
   * CPU-only pod there would leave its GPUs without CPU. r has plenty. */
  static const struct node_def defs[] = {{"s", 16000, 8, "G2"}, {"r", 96000, 8, "G2"}};
  struct vgp_place_cluster *c = cluster_of(defs, 2);
  struct vgp_place_policy *p = policy("frag");
  observe(p, c, 20, (struct vgp_place_request){.cpu_milli = 8000, .num_devices = 1, .core_milli = 1000});
  struct vgp_place_request cpu_only = {.cpu_milli = 8000};
  struct vgp_place_result r = place(p, c, &cpu_only);
  ASSERT_EQ_U64(r.assignment.node, 1);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

VGP_TEST(frag_leaves_scarce_models_to_work_that_needs_them) {
  /* Half the work seen can only run on T4; unconstrained work should go to
   * the G2 node even though the T4 node is ranked first. */
  static const struct node_def defs[] = {{"t", 64000, 2, "T4"}, {"g", 64000, 2, "G2"}};
  struct vgp_place_cluster *c = cluster_of(defs, 2);
  struct vgp_place_policy *p = policy("frag");
  observe(p, c, 20, (struct vgp_place_request){.cpu_milli = 1000, .num_devices = 1,
                                                .core_milli = 1000, .type_include = "T4"});
  observe(p, c, 20, (struct vgp_place_request){.cpu_milli = 1000, .num_devices = 1, .core_milli = 1000});
  struct vgp_place_request req = {.cpu_milli = 1000, .num_devices = 1, .core_milli = 1000};
  struct vgp_place_result r = place(p, c, &req);
  ASSERT_EQ_U64(r.assignment.node, 1);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

/* An 8-device node with two NVLink islands {0..3} and {4..7}: 100 within,
 * 10 across. */
static struct vgp_place_cluster *islands(void) {
  static const struct node_def defs[] = {{"dgx", 128000, 8, "A100"}};
  struct vgp_place_cluster *c = cluster_of(defs, 1);
  for (uint32_t a = 0; a < 8; a++)
    for (uint32_t b = a + 1; b < 8; b++)
      ASSERT_OK(vgp_place_link_set(c, 0, a, b, (a < 4) == (b < 4) ? 100 : 10));
  return c;
}

VGP_TEST(topology_keeps_islands_together) {
  struct vgp_place_cluster *c = islands();
  struct vgp_place_policy *p = policy("topology");
  occupy(c, 0, 4, 1000);
  /* One device: from the broken island, so the whole one stays whole. */
  struct vgp_place_request one = {.num_devices = 1, .core_milli = 1000};
  struct vgp_place_result r = place(p, c, &one);
  ASSERT_EQ_U64(r.assignment.devices[0], 5);
  /* Three: the rest of the broken island (as linked as three of the whole
   * one, and it keeps the whole island intact). */
  struct vgp_place_request three = {.num_devices = 3, .core_milli = 1000};
  r = place(p, c, &three);
  unsigned mask = 0;
  for (unsigned i = 0; i < 3; i++)
    mask |= 1u << r.assignment.devices[i];
  ASSERT_EQ_U64(mask, 0xe0u);
  ASSERT_EQ_DBL(r.score, 100.0, 1e-9);
  /* Four: only the whole island has four linked at 100. */
  struct vgp_place_request four = {.num_devices = 4, .core_milli = 1000};
  r = place(p, c, &four);
  mask = 0;
  for (unsigned i = 0; i < 4; i++)
    mask |= 1u << r.assignment.devices[i];
  ASSERT_EQ_U64(mask, 0x0fu);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

/* The best pair-sum over all subsets of size k of the devices in mask. */
static uint64_t brute_best(const uint32_t links[16][16], unsigned n, unsigned k) {
  uint64_t best = 0;
  for (uint32_t s = 0; s < (1u << n); s++) {
    if ((unsigned)__builtin_popcount(s) != k)
      continue;
    uint64_t v = 0;
    for (unsigned a = 0; a < n; a++)
      for (unsigned b = a + 1; b < n; b++)
        if ((s & (1u << a)) && (s & (1u << b)))
          v += links[a][b];
    if (v > best)
      best = v;
  }
  return best;
}

/* Builds a 10-device node: islands of `island` devices linked at `in`
 * (plus up to `noise`), two sockets of five linked at 20 (plus up to
 * `noise`), and 10 across sockets. */
static struct vgp_place_cluster *topology_case(struct vgp_place_rng *rng, unsigned island,
                                               uint32_t noise, uint32_t links[16][16]) {
  static const struct node_def defs[] = {{"n", 128000, 10, "A100"}};
  struct vgp_place_cluster *c = cluster_of(defs, 1);
  memset(links, 0, sizeof(uint32_t) * 16 * 16);
  for (unsigned a = 0; a < 10; a++)
    for (unsigned b = a + 1; b < 10; b++) {
      uint32_t jitter = noise > 0 ? (uint32_t)vgp_place_rng_below(rng, noise) : 0;
      uint32_t v = a / island == b / island ? 100 + jitter : a / 5 == b / 5 ? 20 + jitter : 10;
      links[a][b] = links[b][a] = v;
      ASSERT_OK(vgp_place_link_set(c, 0, a, b, v));
    }
  return c;
}

/* The bounded search's value for k devices, and the best by enumeration. */
static void topology_compare(struct vgp_place_cluster *c, const uint32_t links[16][16],
                             unsigned k, uint64_t *got, uint64_t *want) {
  struct vgp_place_policy *p = policy("topology");
  struct vgp_place_request req = {.num_devices = k, .core_milli = 1000};
  struct vgp_place_result r = place(p, c, &req);
  *got = 0;
  for (unsigned i = 0; i < k; i++)
    for (unsigned j = i + 1; j < k; j++)
      *got += links[r.assignment.devices[i]][r.assignment.devices[j]];
  *want = brute_best(links, 10, k);
  vgp_place_policy_free(&p);
}

VGP_TEST(topology_bounded_search_matches_enumeration) {
  /* Real topologies are structured: NVLink islands (pairs, quads, fives),
   * sockets, and the rest. On those the search must find exactly what
   * enumerating every subset finds. */
  struct vgp_place_rng rng;
  uint32_t links[16][16];
  vgp_place_rng_seed(&rng, 2024);
  for (unsigned island = 1; island <= 5; island++) {
    struct vgp_place_cluster *c = topology_case(&rng, island, 0, links);
    for (unsigned k = 2; k <= 8; k++) {
      uint64_t got, want;
      topology_compare(c, links, k, &got, &want);
      if (got != want)
        vgp_test_fail(__FILE__, __LINE__, "islands of %u, %u devices: %llu, best %llu", island,
                      k, (unsigned long long)got, (unsigned long long)want);
    }
    vgp_place_cluster_free(&c);
  }
}

VGP_TEST(topology_bounded_search_is_close_on_noisy_links) {
  /* With per-pair noise the problem is the NP-hard densest k-subgraph; a
   * bounded search is a heuristic there. It must stay within 3% of the
   * best and find the best most of the time. */
  struct vgp_place_rng rng;
  uint32_t links[16][16];
  unsigned exact = 0, cases = 0;
  vgp_place_rng_seed(&rng, 2024);
  for (unsigned trial = 0; trial < 40; trial++) {
    struct vgp_place_cluster *c =
        topology_case(&rng, 2 + (unsigned)vgp_place_rng_below(&rng, 4), 60, links);
    for (unsigned k = 2; k <= 6; k++) {
      uint64_t got, want;
      topology_compare(c, links, k, &got, &want);
      if (got * 100 < want * 97)
        vgp_test_fail(__FILE__, __LINE__, "trial %u, %u devices: %llu, best %llu", trial, k,
                      (unsigned long long)got, (unsigned long long)want);
      exact += got == want;
      cases++;
    }
    vgp_place_cluster_free(&c);
  }
  ASSERT_GE_INT(exact * 10, cases * 9);
}

VGP_TEST(hami_binpack_and_spread) {
  static const struct node_def defs[] = {{"a", 64000, 4, "T4"}, {"b", 64000, 4, "T4"}};
  struct vgp_place_cluster *c = cluster_of(defs, 2);
  occupy(c, 0, 0, 300);
  struct vgp_place_request req = {.num_devices = 1, .core_milli = 200};
  struct vgp_place_policy *p = policy("hami"); /* node binpack, device spread */
  struct vgp_place_result r = place(p, c, &req);
  ASSERT_EQ_U64(r.assignment.node, 0);
  ASSERT_EQ_U64(r.assignment.devices[0], 1);
  vgp_place_policy_free(&p);
  p = policy("binpack");
  r = place(p, c, &req);
  ASSERT_EQ_U64(r.assignment.node, 0);
  ASSERT_EQ_U64(r.assignment.devices[0], 0);
  vgp_place_policy_free(&p);
  p = policy("spread");
  r = place(p, c, &req);
  ASSERT_EQ_U64(r.assignment.node, 1);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

VGP_TEST(least_loaded_follows_measured_load) {
  static const struct node_def defs[] = {{"a", 64000, 3, "T4"}, {"b", 64000, 3, "T4"}};
  struct vgp_place_cluster *c = cluster_of(defs, 2);
  for (uint32_t n = 0; n < 2; n++)
    for (uint32_t d = 0; d < 3; d++)
      ASSERT_OK(vgp_place_device_set_load(c, n, d, 90, 0));
  ASSERT_OK(vgp_place_device_set_load(c, 1, 2, 5, 0));
  struct vgp_place_policy *p = policy("least-loaded");
  struct vgp_place_request req = {.num_devices = 1, .core_milli = 100};
  struct vgp_place_result r = place(p, c, &req);
  ASSERT_EQ_U64(r.assignment.node, 1);
  ASSERT_EQ_U64(r.assignment.devices[0], 2);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

VGP_TEST(the_policy_language) {
  struct vgp_place_policy *p = NULL;
  char err[128];
  ASSERT_OK(vgp_place_policy_new("0.7*frag+0.3*bestfit", 1, &p, err, sizeof(err)));
  ASSERT_EQ_STR(vgp_place_policy_name(p), "0.7*frag+0.3*bestfit");
  vgp_place_policy_free(&p);
  ASSERT_OK(vgp_place_policy_new("frag[q=50,plan=0]+topology", 1, &p, err, sizeof(err)));
  vgp_place_policy_free(&p);
  ASSERT_OK(vgp_place_policy_new("hami", 1, &p, err, sizeof(err)));
  ASSERT_EQ_STR(vgp_place_policy_name(p), "hami");
  vgp_place_policy_free(&p);
  static const char *const bad[] = {"", "nope", "2*", "x*frag", "frag[q=1", "frag[q=-1]",
                                    "bestfit+", "+bestfit", "frag[coverage=2]"};
  for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    p = (struct vgp_place_policy *)&err; /* must stay untouched */
    int r = vgp_place_policy_new(bad[i], 1, &p, err, sizeof(err));
    if (r != -EINVAL)
      vgp_test_fail(__FILE__, __LINE__, "'%s' gave %d", bad[i], r);
    ASSERT_EQ_PTR(p, (void *)&err);
    ASSERT_TRUE(err[0] != '\0');
  }
  err[0] = '\0';
  ASSERT_EQ_INT(vgp_place_policy_new("nope", 1, &p, err, sizeof(err)), -EINVAL);
  ASSERT_CONTAINS(err, "nope");
  ASSERT_NOT_NULL(vgp_place_scorer_find("fgd"));
  ASSERT_NULL(vgp_place_scorer_find("fdg"));
  unsigned n = 0;
  while (vgp_place_scorer_get(n) != NULL)
    n++;
  ASSERT_GE_INT(n, 10);
}

VGP_TEST(the_same_seed_gives_the_same_placements) {
  static const struct node_def defs[] = {
      {"a", 64000, 4, "T4"}, {"b", 64000, 4, "T4"}, {"c", 64000, 4, "G2"}, {"d", 64000, 4, "G2"}};
  const char *specs[] = {"random", "frag", "0.5*random+0.5*bestfit"};
  for (unsigned k = 0; k < 3; k++) {
    uint32_t first[64], second[64];
    for (int round = 0; round < 2; round++) {
      struct vgp_place_cluster *c = cluster_of(defs, 4);
      struct vgp_place_policy *p = NULL;
      ASSERT_OK(vgp_place_policy_new(specs[k], 42, &p, NULL, 0));
      for (unsigned i = 0; i < 64; i++) {
        struct vgp_place_request req = {.cpu_milli = 500, .num_devices = 1,
                                        .core_milli = 100 + (i * 131) % 400};
        struct vgp_place_result res;
        vgp_place_policy_observe(p, c, &req);
        ASSERT_OK(vgp_place_schedule(p, c, &req, NULL, 0, &res));
        uint32_t v = res.found ? res.assignment.node * 16 + res.assignment.devices[0] : 999;
        if (res.found)
          ASSERT_OK(vgp_place_commit(c, &req, &res.assignment, NULL));
        (round == 0 ? first : second)[i] = v;
      }
      vgp_place_policy_free(&p);
      vgp_place_cluster_free(&c);
    }
    if (memcmp(first, second, sizeof(first)) != 0)
      vgp_test_fail(__FILE__, __LINE__, "%s is not reproducible", specs[k]);
  }
}

/* A scorer from outside the library: prefers the node named "b". */
static int likes_b(void *state, const struct vgp_place_ctx *ctx, uint32_t node,
                   uint32_t cand_mask, int pick, struct vgp_place_assignment *a,
                   double *ret_score) {
  struct vgp_place_node_view v;
  ASSERT_OK(vgp_place_node_view(ctx->cluster, node, &v));
  *ret_score = strcmp(v.name, "b") == 0 ? 1.0 : 0.0;
  return 0;
}

VGP_TEST(scorers_plug_in_from_outside) {
  static const struct node_def defs[] = {{"a", 64000, 2, "T4"}, {"b", 64000, 2, "T4"}};
  static const struct vgp_place_scorer_ops ops = {.name = "likes-b", .score = likes_b};
  struct vgp_place_cluster *c = cluster_of(defs, 2);
  struct vgp_place_policy *p = NULL;
  ASSERT_OK(vgp_place_policy_new_empty("mine", &p));
  struct vgp_place_request req = {.num_devices = 1, .core_milli = 500};
  struct vgp_place_result res;
  ASSERT_EQ_INT(vgp_place_schedule(p, c, &req, NULL, 0, &res), -EINVAL); /* no terms */
  ASSERT_OK(vgp_place_policy_add_term(p, &ops, 1.0, NULL, 0));
  ASSERT_OK(vgp_place_policy_add_term(p, vgp_place_scorer_find("device-spread"), 1.0, NULL, 0));
  res = place(p, c, &req);
  ASSERT_EQ_U64(res.assignment.node, 1);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

VGP_TEST(fragmentation_measure) {
  static const struct node_def defs[] = {{"a", 64000, 2, "T4"}, {"b", 64000, 2, "T4"}};
  struct vgp_place_cluster *c = cluster_of(defs, 2);
  struct vgp_place_workload *w = NULL;
  ASSERT_OK(vgp_place_workload_new(1.0, &w));
  struct vgp_place_request half = {.cpu_milli = 1000, .num_devices = 1, .core_milli = 500};
  ASSERT_OK(vgp_place_workload_add(w, c, &half));
  ASSERT_EQ_U64(vgp_place_workload_count(w), 1);
  ASSERT_EQ_U64(vgp_place_workload_typical(w), 1);
  occupy(c, 0, 1, 700); /* a: free 1000 and 300; the 300 cannot take a 500 */
  double idle = 0;
  ASSERT_EQ_DBL(vgp_place_node_fragmentation(c, w, 0), 300.0, 1e-9);
  ASSERT_EQ_DBL(vgp_place_node_fragmentation(c, w, 1), 0.0, 1e-9);
  ASSERT_EQ_DBL(vgp_place_fragmentation(c, w, &idle), 300.0, 1e-9);
  ASSERT_EQ_DBL(idle, 3300.0, 1e-9);
  /* A CPU-only request makes every idle GPU a fragment for it. */
  struct vgp_place_request cpu = {.cpu_milli = 1000};
  ASSERT_OK(vgp_place_workload_add(w, c, &cpu));
  ASSERT_EQ_DBL(vgp_place_node_fragmentation(c, w, 1), 1000.0, 1e-9);
  vgp_place_workload_free(&w);
  ASSERT_NULL(w);
  vgp_place_cluster_free(&c);
}
