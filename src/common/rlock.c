/*
 * rlock.c - robust process-shared mutexes (see rlock.h).
 */
#include <errno.h>
#include <time.h>

#include "clock.h"
#include "rlock.h"

int vgp__rlock_init(pthread_mutex_t *mutex) {
  pthread_mutexattr_t attr;
  int r = pthread_mutexattr_init(&attr);
  if (r != 0)
    return -r;
  r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (r == 0)
    r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (r == 0)
    r = pthread_mutex_init(mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  return -r;
}

int vgp__rlock_lock(pthread_mutex_t *mutex, uint64_t timeout_ns) {
  int r;
  if (timeout_ns == 0) {
    r = pthread_mutex_lock(mutex);
  } else {
    struct timespec now, deadline;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t ns = (uint64_t)now.tv_sec * VGP_NSEC_PER_SEC +
                  (uint64_t)now.tv_nsec + timeout_ns;
    deadline = vgp__ns_to_timespec(ns);
    r = pthread_mutex_timedlock(mutex, &deadline);
  }
  if (r == 0)
    return 0;
  if (r == EOWNERDEAD) {
    pthread_mutex_consistent(mutex);
    return 1;
  }
  return -r;
}

void vgp__rlock_unlock(pthread_mutex_t *mutex) { pthread_mutex_unlock(mutex); }
