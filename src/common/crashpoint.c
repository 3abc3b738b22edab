/*
 * crashpoint.c - deterministic crash points for fault tests (see
 * crashpoint.h).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "crashpoint.h"
#include "strutil.h"

#define VGP__CRASH_NAME_MAX 64

/* -1: not read yet; 0: no crash point armed (or already passed). */
static long vgp__crash_countdown = -1;
static char vgp__crash_name[VGP__CRASH_NAME_MAX];

void vgp__crash_point(const char *name) {
  long c = __atomic_load_n(&vgp__crash_countdown, __ATOMIC_ACQUIRE);
  if (c == 0)
    return;
  if (c < 0) {
    const char *env = getenv("VGPOOL_TEST_CRASH_AT");
    const char *colon = env != NULL ? strrchr(env, ':') : NULL;
    c = 0;
    if (colon != NULL && (size_t)(colon - env) < sizeof(vgp__crash_name)) {
      memcpy(vgp__crash_name, env, (size_t)(colon - env));
      vgp__crash_name[colon - env] = '\0';
      c = atol(colon + 1);
      if (c < 0)
        c = 0;
    }
    __atomic_store_n(&vgp__crash_countdown, c, __ATOMIC_RELEASE);
    if (c == 0)
      return;
  }
  if (strcmp(name, vgp__crash_name) == 0 &&
      __atomic_sub_fetch(&vgp__crash_countdown, 1, __ATOMIC_ACQ_REL) == 0)
    raise(SIGKILL);
}
