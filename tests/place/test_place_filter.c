/*
 * test_place_filter.c - the filter names the right reason for every node it
 * rejects, and a request that could never fit is reported as such.
 *
 * The cluster: n0 (4 x A100, two NUMA nodes, two sharing slots per device),
 * n1 (2 x T4, small, zone=b) and n2 (8 x A100 on two NUMA nodes, zone=a).
 */
#include <errno.h>

#include "vgp_test.h"
#include "vgpool/place.h"

#define A100 "NVIDIA-A100-SXM4-80GB"
#define T4 "Tesla-T4"

static struct vgp_place_cluster *make_cluster(void) {
  struct vgp_place_cluster *c = NULL;
  const char *zone_a[] = {"zone=a"}, *zone_b[] = {"zone=b"};
  struct {
    const char *name;
    uint64_t cpu, mem_gib;
    unsigned gpus;
    const char *model;
    uint64_t dev_gib;
    unsigned slots;
    const char *const *labels;
  } nodes[] = {
      {"n0", 16000, 64, 4, A100, 80, 2, NULL},
      {"n1", 8000, 32, 2, T4, 16, 0, zone_b},
      {"n2", 64000, 256, 8, A100, 80, 0, zone_a},
  };
  ASSERT_OK(vgp_place_cluster_new(&c));
  for (unsigned i = 0; i < 3; i++) {
    struct vgp_place_node_spec spec = {.name = nodes[i].name, .cpu_milli = nodes[i].cpu,
                                       .mem_bytes = nodes[i].mem_gib << 30,
                                       .labels = nodes[i].labels,
                                       .n_labels = nodes[i].labels ? 1 : 0};
    uint32_t node;
    ASSERT_OK(vgp_place_node_add(c, &spec, &node));
    for (unsigned d = 0; d < nodes[i].gpus; d++) {
      char uuid[32];
      snprintf(uuid, sizeof(uuid), "GPU-%s-%u", nodes[i].name, d);
      struct vgp_place_device_spec dev = {.uuid = uuid, .model = nodes[i].model,
                                          .mem_bytes = nodes[i].dev_gib << 30,
                                          .max_tenants = nodes[i].slots,
                                          .numa = (int)(d * 2 / nodes[i].gpus), .healthy = 1};
      ASSERT_OK(vgp_place_device_add(c, node, &dev, NULL));
    }
  }
  (void)zone_a;
  return c;
}

/* The reasons for n0, n1, n2 as a string like "fits,cpu,fits" is hard to
 * read in a failure; the test compares the three codes one by one. */
static void expect(const struct vgp_place_cluster *c, const struct vgp_place_request *req,
                   enum vgp_place_reason r0, enum vgp_place_reason r1,
                   enum vgp_place_reason r2, int line) {
  enum vgp_place_reason want[3] = {r0, r1, r2};
  for (uint32_t n = 0; n < 3; n++) {
    enum vgp_place_reason got = vgp_place_filter_node(c, req, n, NULL);
    if (got != want[n])
      vgp_test_fail(__FILE__, line, "node n%u: got '%s', want '%s'", n,
                    vgp_place_reason_name(got), vgp_place_reason_name(want[n]));
  }
}

#define FITS VGP_PLACE_FITS

VGP_TEST(host_resources_and_selector) {
  struct vgp_place_cluster *c = make_cluster();
  struct vgp_place_request req = {.cpu_milli = 20000, .num_devices = 1, .core_milli = 100};
  expect(c, &req, VGP_PLACE_R_CPU, VGP_PLACE_R_CPU, FITS, __LINE__);
  req.cpu_milli = 1000;
  req.mem_bytes = 40ull << 30;
  expect(c, &req, FITS, VGP_PLACE_R_MEMORY, FITS, __LINE__);
  req.mem_bytes = 0;
  req.node_selector = "zone=a";
  expect(c, &req, VGP_PLACE_R_SELECTOR, VGP_PLACE_R_SELECTOR, FITS, __LINE__);
  req.node_selector = "zone=b, zone=a";
  expect(c, &req, VGP_PLACE_R_SELECTOR, VGP_PLACE_R_SELECTOR, VGP_PLACE_R_SELECTOR, __LINE__);
  vgp_place_cluster_free(&c);
}

VGP_TEST(device_count_and_models) {
  struct vgp_place_cluster *c = make_cluster();
  struct vgp_place_request req = {.num_devices = 8, .core_milli = 1000};
  expect(c, &req, VGP_PLACE_R_DEVICE_COUNT, VGP_PLACE_R_DEVICE_COUNT, FITS, __LINE__);
  req.num_devices = 1;
  req.type_include = "t4"; /* HAMi: case-insensitive substring */
  expect(c, &req, VGP_PLACE_R_TYPE, FITS, VGP_PLACE_R_TYPE, __LINE__);
  req.type_match = VGP_PLACE_MATCH_EXACT;
  req.type_include = "T4"; /* openb: exact names */
  expect(c, &req, VGP_PLACE_R_TYPE, VGP_PLACE_R_TYPE, VGP_PLACE_R_TYPE, __LINE__);
  req.type_include = "V100|" T4;
  expect(c, &req, VGP_PLACE_R_TYPE, FITS, VGP_PLACE_R_TYPE, __LINE__);
  req.type_match = VGP_PLACE_MATCH_SUBSTRING;
  req.type_include = NULL;
  req.type_exclude = "a100";
  expect(c, &req, VGP_PLACE_R_TYPE, FITS, VGP_PLACE_R_TYPE, __LINE__);
  vgp_place_cluster_free(&c);
}

VGP_TEST(uuids_health_and_exclusive) {
  struct vgp_place_cluster *c = make_cluster();
  struct vgp_place_request req = {.num_devices = 1, .core_milli = 100, .uuid_include = "GPU-n2-3"};
  uint32_t mask = 0;
  expect(c, &req, VGP_PLACE_R_UUID, VGP_PLACE_R_UUID, FITS, __LINE__);
  ASSERT_EQ_INT(vgp_place_filter_node(c, &req, 2, &mask), FITS);
  ASSERT_EQ_U64(mask, 1u << 3);
  req.uuid_include = NULL;
  req.uuid_exclude = "GPU-n1-0,GPU-n1-1";
  expect(c, &req, FITS, VGP_PLACE_R_UUID, FITS, __LINE__);
  req.uuid_exclude = NULL;
  ASSERT_OK(vgp_place_device_set_health(c, 1, 0, 0));
  ASSERT_OK(vgp_place_device_set_health(c, 1, 1, 0));
  expect(c, &req, FITS, VGP_PLACE_R_UNHEALTHY, FITS, __LINE__);
  ASSERT_OK(vgp_place_device_set_health(c, 1, 1, 1));
  ASSERT_EQ_INT(vgp_place_filter_node(c, &req, 1, &mask), FITS);
  ASSERT_EQ_U64(mask, 1u << 1);

  /* An exclusive tenant on each T4 keeps everyone else off. */
  struct vgp_place_request excl = {.num_devices = 1, .core_milli = 100, .exclusive = 1};
  struct vgp_place_assignment a = {.node = 1, .n_devices = 1, .devices = {1}};
  ASSERT_OK(vgp_place_commit(c, &excl, &a, NULL));
  ASSERT_OK(vgp_place_device_set_health(c, 1, 0, 1));
  a.devices[0] = 0;
  ASSERT_OK(vgp_place_commit(c, &excl, &a, NULL));
  expect(c, &req, FITS, VGP_PLACE_R_EXCLUSIVE, FITS, __LINE__);
  vgp_place_cluster_free(&c);
}

VGP_TEST(slots_compute_and_device_memory) {
  struct vgp_place_cluster *c = make_cluster();
  struct vgp_place_request tiny = {.num_devices = 1, .core_milli = 10};
  /* n0 has two sharing slots per device: fill them all. */
  for (uint8_t d = 0; d < 4; d++)
    for (int k = 0; k < 2; k++) {
      struct vgp_place_assignment a = {.node = 0, .n_devices = 1, .devices = {d}};
      ASSERT_OK(vgp_place_commit(c, &tiny, &a, NULL));
    }
  expect(c, &tiny, VGP_PLACE_R_TENANTS, FITS, FITS, __LINE__);

  struct vgp_place_request big = {.num_devices = 1, .core_milli = 700};
  for (uint8_t d = 0; d < 2; d++) {
    struct vgp_place_assignment a = {.node = 1, .n_devices = 1, .devices = {d}};
    ASSERT_OK(vgp_place_commit(c, &big, &a, NULL));
  }
  struct vgp_place_request mid = {.num_devices = 1, .core_milli = 400};
  expect(c, &mid, VGP_PLACE_R_TENANTS, VGP_PLACE_R_COMPUTE, FITS, __LINE__);

  /* Device memory in bytes (a T4 has 16 GiB) and in percent. */
  struct vgp_place_request mem = {.num_devices = 1, .core_milli = 100, .dev_mem_bytes = 20ull << 30};
  ASSERT_EQ_INT(vgp_place_filter_node(c, &mem, 1, NULL), VGP_PLACE_R_DEV_MEMORY);
  ASSERT_EQ_INT(vgp_place_filter_node(c, &mem, 2, NULL), FITS);
  struct vgp_place_request pct = {.num_devices = 1, .core_milli = 100, .dev_mem_percent = 60};
  struct vgp_place_assignment a = {.node = 2, .n_devices = 1, .devices = {0}};
  ASSERT_OK(vgp_place_commit(c, &pct, &a, NULL));
  enum vgp_place_reason why;
  ASSERT_EQ_INT(vgp_place_check(c, &pct, &a, &why), -ENOSPC);
  ASSERT_EQ_INT(why, VGP_PLACE_R_DEV_MEMORY);
  vgp_place_cluster_free(&c);
}

VGP_TEST(numa_binding_takes_the_tightest_numa_node) {
  struct vgp_place_cluster *c = make_cluster();
  struct vgp_place_policy *p = NULL;
  struct vgp_place_result res;
  struct vgp_place_request whole = {.num_devices = 1, .core_milli = 1000};
  struct vgp_place_assignment a = {.node = 2, .n_devices = 1, .devices = {0}};
  ASSERT_OK(vgp_place_commit(c, &whole, &a, NULL)); /* n2: NUMA 0 has 3 idle, NUMA 1 has 4 */

  struct vgp_place_request req = {.num_devices = 3, .core_milli = 1000, .numa_bind = 1,
                                  .node_selector = "zone=a"};
  ASSERT_OK(vgp_place_policy_new("bestfit", 1, &p, NULL, 0));
  ASSERT_OK(vgp_place_schedule(p, c, &req, NULL, 0, &res));
  ASSERT_TRUE(res.found);
  ASSERT_EQ_U64(res.assignment.node, 2);
  for (unsigned i = 0; i < 3; i++)
    ASSERT_EQ_U64(res.assignment.devices[i], 1 + i); /* NUMA 0, the tighter fit */
  req.num_devices = 4;
  ASSERT_OK(vgp_place_schedule(p, c, &req, NULL, 0, &res));
  ASSERT_TRUE(res.found);
  for (unsigned i = 0; i < 4; i++)
    ASSERT_EQ_U64(res.assignment.devices[i], 4 + i);
  req.num_devices = 5;
  ASSERT_EQ_INT(vgp_place_filter_node(c, &req, 2, NULL), VGP_PLACE_R_NUMA);
  ASSERT_OK(vgp_place_schedule(p, c, &req, NULL, 0, &res));
  ASSERT_FALSE(res.found);
  ASSERT_TRUE(res.never_fits);
  ASSERT_EQ_INT(res.never_reason, VGP_PLACE_R_NUMA);
  /* A chosen set across NUMA nodes is refused at commit. */
  struct vgp_place_request two = {.num_devices = 2, .core_milli = 1000, .numa_bind = 1};
  struct vgp_place_assignment across = {.node = 2, .n_devices = 2, .devices = {3, 4}};
  enum vgp_place_reason why;
  ASSERT_EQ_INT(vgp_place_check(c, &two, &across, &why), -ENOSPC);
  ASSERT_EQ_INT(why, VGP_PLACE_R_NUMA);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

VGP_TEST(schedule_counts_reasons_and_tells_never_from_not_now) {
  struct vgp_place_cluster *c = make_cluster();
  struct vgp_place_policy *p = NULL;
  struct vgp_place_result res;
  uint8_t reasons[3];

  ASSERT_OK(vgp_place_policy_new("frag", 1, &p, NULL, 0));
  /* More devices than any node has: never. */
  struct vgp_place_request nine = {.num_devices = 9, .core_milli = 1000};
  ASSERT_OK(vgp_place_schedule(p, c, &nine, reasons, 3, &res));
  ASSERT_FALSE(res.found);
  ASSERT_TRUE(res.never_fits);
  ASSERT_EQ_INT(res.never_reason, VGP_PLACE_R_DEVICE_COUNT);
  ASSERT_EQ_U64(res.rejected[VGP_PLACE_R_DEVICE_COUNT], 3);
  ASSERT_EQ_INT(reasons[2], VGP_PLACE_R_DEVICE_COUNT);
  /* Eight devices and more CPU than the one 8-device node has: the reason
   * comes from the node that came closest, not from the majority. */
  struct vgp_place_request hungry = {.num_devices = 8, .core_milli = 1000, .cpu_milli = 100000};
  ASSERT_OK(vgp_place_schedule(p, c, &hungry, NULL, 0, &res));
  ASSERT_TRUE(res.never_fits);
  ASSERT_EQ_INT(res.never_reason, VGP_PLACE_R_CPU);
  /* A model nobody has. */
  struct vgp_place_request h100 = {.num_devices = 1, .core_milli = 100, .type_include = "H100"};
  ASSERT_OK(vgp_place_schedule(p, c, &h100, NULL, 0, &res));
  ASSERT_TRUE(res.never_fits);
  ASSERT_EQ_INT(res.never_reason, VGP_PLACE_R_TYPE);

  /* Fill the T4 node; a T4 request is then refused now but not forever. */
  struct vgp_place_request whole = {.num_devices = 1, .core_milli = 1000};
  for (uint8_t d = 0; d < 2; d++) {
    struct vgp_place_assignment a = {.node = 1, .n_devices = 1, .devices = {d}};
    ASSERT_OK(vgp_place_commit(c, &whole, &a, NULL));
  }
  struct vgp_place_request t4 = {.num_devices = 1, .core_milli = 500, .type_include = "T4"};
  ASSERT_OK(vgp_place_schedule(p, c, &t4, reasons, 3, &res));
  ASSERT_FALSE(res.found);
  ASSERT_FALSE(res.never_fits);
  ASSERT_EQ_U64(res.feasible, 0);
  ASSERT_EQ_U64(res.rejected[VGP_PLACE_R_TYPE], 2);
  ASSERT_EQ_U64(res.rejected[VGP_PLACE_R_COMPUTE], 1);
  ASSERT_EQ_INT(reasons[1], VGP_PLACE_R_COMPUTE);
  /* The reasons buffer must cover the cluster. */
  ASSERT_EQ_INT(vgp_place_schedule(p, c, &t4, reasons, 2, &res), -EINVAL);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}

VGP_TEST(bad_requests_are_refused) {
  struct vgp_place_cluster *c = make_cluster();
  struct vgp_place_policy *p = NULL;
  struct vgp_place_result res;
  struct vgp_place_request req = {.num_devices = 1, .core_milli = 1001};
  ASSERT_EQ_INT(vgp_place_request_validate(&req), -ERANGE);
  req.core_milli = 100;
  req.dev_mem_percent = 101;
  ASSERT_EQ_INT(vgp_place_request_validate(&req), -ERANGE);
  req.dev_mem_percent = 0;
  req.num_devices = 17;
  ASSERT_EQ_INT(vgp_place_request_validate(&req), -E2BIG);
  req.num_devices = 1;
  req.type_match = (enum vgp_place_match)7;
  ASSERT_EQ_INT(vgp_place_request_validate(&req), -EINVAL);
  req.type_match = VGP_PLACE_MATCH_EXACT;
  ASSERT_OK(vgp_place_request_validate(&req));
  ASSERT_OK(vgp_place_policy_new("bestfit", 1, &p, NULL, 0));
  req.core_milli = 2000;
  memset(&res, 0xa5, sizeof(res));
  ASSERT_EQ_INT(vgp_place_schedule(p, c, &req, NULL, 0, &res), -ERANGE);
  ASSERT_EQ_INT(vgp_place_filter_node(c, &req, 0, NULL), VGP_PLACE_R_POLICY);
  vgp_place_policy_free(&p);
  vgp_place_cluster_free(&c);
}
