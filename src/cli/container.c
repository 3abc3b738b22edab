/*
 * container.c - naming, listing and removing container directories (see
 * container.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "container.h"
#include "strutil.h"
#include "vgpool/paths.h"

int vgp_container_id_valid(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n >= VGP_CONTAINER_ID_MAX)
    return 0;
  /* "." and ".." consist of allowed characters but name the containers
   * directory itself and the root. */
  if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_' || c == '.'))
      return 0;
  }
  return 1;
}

int vgp_containers_dir(char *buf, size_t len, int create) {
  char root[VGP_CLI_PATH_MAX];
  int r = vgp_root_dir(root, sizeof(root), create);
  if (r < 0)
    return r;
  int n = snprintf(buf, len, "%s/containers", root);
  if (n < 0 || (size_t)n >= len)
    return -ENAMETOOLONG;
  if (create && mkdir(buf, 0755) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int vgp_container_remove(const char *dir) {
  int first = 0;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return errno == ENOENT ? 0 : -errno;
  DIR *d = fdopendir(dfd);
  if (d == NULL) {
    int e = -errno;
    close(dfd);
    return e;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    /* Only files: a directory in here is not ours, and removing trees is
     * not something a cleanup path should ever do. */
    if (unlinkat(dfd, e->d_name, 0) < 0 && errno != ENOENT && first == 0)
      first = -errno;
  }
  closedir(d);
  if (rmdir(dir) < 0 && errno != ENOENT && first == 0)
    first = -errno;
  return first;
}

static int vgp__id_cmp(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

int vgp_container_list(const char *containers_dir, char (**ret_ids)[VGP_CONTAINER_ID_MAX],
                       size_t *ret_count, int *ret_truncated) {
  char(*ids)[VGP_CONTAINER_ID_MAX] = NULL;
  size_t count = 0, cap = 0;
  int truncated = 0;
  DIR *d = opendir(containers_dir);
  if (d == NULL) {
    if (errno != ENOENT)
      return -errno;
    *ret_ids = NULL;
    *ret_count = 0;
    *ret_truncated = 0;
    return 0;
  }
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!vgp_container_id_valid(e->d_name))
      continue;
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
      continue;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
        continue;
    }
    if (count == VGP_CONTAINER_LIST_MAX) {
      truncated = 1;
      break;
    }
    if (count == cap) {
      size_t ncap = cap == 0 ? 16 : cap * 2;
      if (ncap > VGP_CONTAINER_LIST_MAX)
        ncap = VGP_CONTAINER_LIST_MAX;
      void *p = vgp__realloc(ids, ncap * sizeof(*ids));
      if (p == NULL) {
        vgp__free(ids);
        closedir(d);
        return -ENOMEM;
      }
      ids = p;
      cap = ncap;
    }
    vgp__strlcpy(ids[count], e->d_name, sizeof(ids[count]));
    count++;
  }
  closedir(d);
  if (count > 1)
    qsort(ids, count, sizeof(*ids), vgp__id_cmp);
  *ret_ids = ids;
  *ret_count = count;
  *ret_truncated = truncated;
  return 0;
}
