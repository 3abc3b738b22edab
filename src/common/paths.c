/*
 * paths.c - the node directory (see include/vgpool/paths.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vgpool/paths.h"

static int vgp__mkdir_p(const char *path) {
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
    return -ENAMETOOLONG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int vgp_root_dir(char *buf, size_t len, int create) {
  const char *env = getenv("VGPOOL_ROOT");
  int n;
  if (env != NULL && *env != '\0') {
    n = snprintf(buf, len, "%s", env);
    if (n < 0 || (size_t)n >= len)
      return -ENAMETOOLONG;
    return create ? vgp__mkdir_p(buf) : 0;
  }
  /* The system location, if it exists or can be made. */
  if (access(VGP_ROOT_DEFAULT, W_OK) == 0 ||
      (create && vgp__mkdir_p(VGP_ROOT_DEFAULT) == 0 && access(VGP_ROOT_DEFAULT, W_OK) == 0)) {
    n = snprintf(buf, len, "%s", VGP_ROOT_DEFAULT);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
  }
  if (!create && access(VGP_ROOT_DEFAULT, R_OK) == 0) {
    n = snprintf(buf, len, "%s", VGP_ROOT_DEFAULT);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
  }
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg != NULL && *xdg != '\0')
    n = snprintf(buf, len, "%s/vgpool", xdg);
  else
    n = snprintf(buf, len, "/tmp/vgpool-%u", (unsigned)getuid());
  if (n < 0 || (size_t)n >= len)
    return -ENAMETOOLONG;
  return create ? vgp__mkdir_p(buf) : 0;
}
