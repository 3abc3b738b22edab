/*
 * alloc.h - heap allocation with deterministic failure injection.
 *
 * Code that runs inside applications must survive every allocation failing.
 * All of vgpool's heap allocations go through these wrappers so that a test
 * can make the n-th allocation fail (curl's allocation-failure loop): a
 * process-wide countdown, armed by vgp__alloc_fail_after() or by the
 * environment variable VGPOOL_TEST_ALLOC_FAIL=<n>, fails exactly one
 * allocation. When disarmed the cost is one relaxed atomic load.
 */
#ifndef VGP_COMMON_ALLOC_H
#define VGP_COMMON_ALLOC_H

#include <stddef.h>

void *vgp__malloc(size_t size);
void *vgp__calloc(size_t count, size_t size);
void *vgp__realloc(void *ptr, size_t size);
void vgp__free(void *ptr);

/* Makes the n-th allocation from now fail (n >= 1); 0 disarms. */
void vgp__alloc_fail_after(long n);

/* Returns how many allocations were attempted since the process started;
 * the failure loop uses it to know when every allocation has been tried. */
long vgp__alloc_attempts(void);

#endif
