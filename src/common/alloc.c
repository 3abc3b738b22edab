/*
 * alloc.c - failure-injecting allocation wrappers (see alloc.h).
 */
#include <stdlib.h>

#include "alloc.h"

static long vgp__fail_countdown = -1; /* -1: not yet read from env */
static long vgp__attempts;

static int vgp__should_fail(void) {
  long c = __atomic_load_n(&vgp__fail_countdown, __ATOMIC_RELAXED);
  __atomic_fetch_add(&vgp__attempts, 1, __ATOMIC_RELAXED);
  if (c == 0)
    return 0;
  if (c < 0) {
    const char *env = getenv("VGPOOL_TEST_ALLOC_FAIL");
    long n = env != NULL ? atol(env) : 0;
    long expected = -1;
    __atomic_compare_exchange_n(&vgp__fail_countdown, &expected, n > 0 ? n : 0,
                                0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    if (n <= 0)
      return 0;
  }
  return __atomic_sub_fetch(&vgp__fail_countdown, 1, __ATOMIC_RELAXED) == 0;
}

void *vgp__malloc(size_t size) {
  if (vgp__should_fail())
    return NULL;
  return malloc(size);
}

void *vgp__calloc(size_t count, size_t size) {
  if (vgp__should_fail())
    return NULL;
  return calloc(count, size);
}

void *vgp__realloc(void *ptr, size_t size) {
  if (vgp__should_fail())
    return NULL;
  return realloc(ptr, size);
}

void vgp__free(void *ptr) { free(ptr); }

void vgp__alloc_fail_after(long n) {
  __atomic_store_n(&vgp__fail_countdown, n > 0 ? n : 0, __ATOMIC_RELAXED);
}

long vgp__alloc_attempts(void) {
  return __atomic_load_n(&vgp__attempts, __ATOMIC_RELAXED);
}
