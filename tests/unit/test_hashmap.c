/*
 * test_hashmap.c - the allocation-record map: correctness against a shadow
 * model under random operations, and no damage when allocation fails.
 */
#include <errno.h>

#include "alloc.h"
#include "hashmap.h"
#include "vgp_test.h"

struct rec {
  uint64_t size;
  uint32_t dev;
  uint32_t kind;
};

VGP_TEST(put_get_remove) {
  struct vgp__hmap m;
  vgp__hmap_init(&m, sizeof(struct rec));
  ASSERT_NULL(vgp__hmap_get(&m, 1));
  ASSERT_EQ_INT(vgp__hmap_remove(&m, 1, NULL), -ENOENT);
  for (uint64_t k = 0; k < 1000; k++) {
    struct rec r = {k * 3, (uint32_t)k, 1};
    ASSERT_OK(vgp__hmap_put(&m, k << 12, &r));
  }
  ASSERT_EQ_U64(m.count, 1000);
  for (uint64_t k = 0; k < 1000; k += 2) {
    struct rec out;
    ASSERT_OK(vgp__hmap_remove(&m, k << 12, &out));
    ASSERT_EQ_U64(out.size, k * 3);
  }
  for (uint64_t k = 0; k < 1000; k++) {
    struct rec *r = vgp__hmap_get(&m, k << 12);
    if (k % 2 == 0) {
      ASSERT_NULL(r);
    } else {
      ASSERT_NOT_NULL(r);
      ASSERT_EQ_U64(r->size, k * 3);
    }
  }
  size_t cursor = 0, seen = 0;
  uint64_t key;
  void *val;
  while (vgp__hmap_next(&m, &cursor, &key, &val))
    seen++;
  ASSERT_EQ_U64(seen, 500);
  vgp__hmap_clear(&m);
  ASSERT_EQ_U64(m.count, 0);
}

VGP_TEST(random_against_shadow) {
  enum { N = 4096 };
  static uint64_t shadow[N]; /* 0 = absent, else value */
  struct vgp__hmap m;
  vgp__hmap_init(&m, sizeof(uint64_t));
  uint64_t seed = 12345;
  for (int i = 0; i < 200000; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t k = (seed >> 33) % N;
    int op = (int)((seed >> 20) % 3);
    if (op == 0) {
      uint64_t v = seed | 1;
      ASSERT_OK(vgp__hmap_put(&m, k, &v));
      shadow[k] = v;
    } else if (op == 1) {
      int r = vgp__hmap_remove(&m, k, NULL);
      ASSERT_EQ_INT(r, shadow[k] ? 0 : -ENOENT);
      shadow[k] = 0;
    } else {
      uint64_t *v = vgp__hmap_get(&m, k);
      if (shadow[k] == 0)
        ASSERT_NULL(v);
      else
        ASSERT_EQ_U64(*v, shadow[k]);
    }
  }
  size_t live = 0;
  for (int k = 0; k < N; k++)
    live += shadow[k] != 0;
  ASSERT_EQ_U64(m.count, live);
  vgp__hmap_clear(&m);
}

VGP_TEST(allocation_failure_leaves_map_intact) {
  /* Make each allocation fail in turn while growing the map: every failed
   * put must return -ENOMEM and leave all earlier entries readable. */
  for (long fail_at = 1; fail_at < 40; fail_at++) {
    struct vgp__hmap m;
    vgp__hmap_init(&m, sizeof(uint64_t));
    vgp__alloc_fail_after(fail_at);
    uint64_t inserted = 0;
    for (uint64_t k = 1; k <= 200; k++) {
      int r = vgp__hmap_put(&m, k, &k);
      if (r == -ENOMEM)
        continue;
      ASSERT_OK(r);
      inserted++;
    }
    vgp__alloc_fail_after(0);
    ASSERT_EQ_U64(m.count, inserted);
    for (uint64_t k = 1; k <= 200; k++) {
      uint64_t *v = vgp__hmap_get(&m, k);
      if (v != NULL)
        ASSERT_EQ_U64(*v, k);
    }
    vgp__hmap_clear(&m);
  }
}
