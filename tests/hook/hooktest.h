/*
 * hooktest.h - helpers for the tests of libvgpool.so.
 *
 * A test builds a container the way `vgpool run` does (a directory with a
 * limits file and a region) on a private simulated node, then runs helper
 * processes (this same test binary, re-executed) with libvgpool.so
 * preloaded, VGPOOL_CONTAINER_DIR pointing at the container and the
 * simulated driver on the library path. The test process itself is never
 * preloaded; it reads the ground truth from the simulator's node state and
 * the container's region directly.
 */
#ifndef VGP_HOOKTEST_H
#define VGP_HOOKTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node.h"
#include "region.h"
#include "strutil.h"
#include "vgp_test.h"
#include "vgpool/limits.h"
#include "vgpool_cuda.h"

/* In a helper process: fails it (exit status 50) when cond is false,
 * saying which check failed. */
#define HT_CHECK(cond)                                                         \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      return 50;                                                               \
    }                                                                          \
  } while (0)

#define HT_CU_OK(expr)                                                         \
  do {                                                                         \
    CUresult ht__r = (expr);                                                   \
    if (ht__r != CUDA_SUCCESS) {                                               \
      fprintf(stderr, "%s:%d: %s = %d\n", __FILE__, __LINE__, #expr, (int)ht__r); \
      return 100 + __LINE__ % 100;                                             \
    }                                                                          \
  } while (0)

static inline const char *ht_path(const char *name) {
  static char buf[8][4096];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, 4096, "%s/%s", vgp_test_tmpdir(), name);
  return p;
}

/* Selects a private simulated node described by a config file. */
static inline void ht_node(const char *config) {
  FILE *f = fopen(ht_path("node.conf"), "w");
  if (f == NULL)
    vgp_test_fail(__FILE__, __LINE__, "cannot write node.conf");
  fputs(config, f);
  fclose(f);
  setenv("VGPOOL_SIM_CONFIG", ht_path("node.conf"), 1);
  setenv("VGPOOL_SIM_STATE", ht_path("node.state"), 1);
  unsetenv("VGPOOL_SIM_DEVICES");
  unsetenv("CUDA_VISIBLE_DEVICES");
  char lib[4096];
  snprintf(lib, sizeof(lib), "%s/src/sim", vgp_test_build_dir());
  setenv("LD_LIBRARY_PATH", lib, 1);
}

/* Opens the node state (creating it from the config) to read the truth. */
static inline void ht_open_node(struct vgp_sim_handle *h) {
  char err[512];
  if (vgp_sim_open(h, err, sizeof(err)) < 0)
    vgp_test_fail(__FILE__, __LINE__, "%s", err);
}

/* UUID of node device i. */
static inline const char *ht_uuid(int i) {
  static char uuid[4][VGP_UUID_MAX];
  struct vgp_sim_handle h;
  ht_open_node(&h);
  vgp__strlcpy(uuid[i % 4], h.node->cfg[i].uuid, VGP_UUID_MAX);
  vgp_sim_close(&h);
  return uuid[i % 4];
}

/* Creates a container with one quota per listed device and points the
 * environment at it, making exactly its devices visible (by UUID) as
 * `vgpool run` does. memory[i] == 0 means no memory limit. */
static inline void ht_container(const char *id, int ndev, const int *devices, const uint64_t *memory) {
  struct vgp_limits l;
  memset(&l, 0, sizeof(l));
  snprintf(l.container, sizeof(l.container), "%s", id);
  l.priority = 1;
  l.ndevices = (unsigned)ndev;
  for (int i = 0; i < ndev; i++) {
    vgp__strlcpy(l.dev[i].uuid, ht_uuid(devices[i]), sizeof(l.dev[i].uuid));
    l.dev[i].memory = memory[i];
    l.dev[i].cores = 100;
  }
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s/%s", vgp_test_tmpdir(), id);
  if (mkdir(dir, 0755) < 0)
    vgp_test_fail(__FILE__, __LINE__, "mkdir %s failed", dir);
  char path[4200];
  snprintf(path, sizeof(path), "%s/limits", dir);
  ASSERT_OK(vgp_limits_save(path, &l));
  snprintf(path, sizeof(path), "%s/region", dir);
  ASSERT_OK(vgp__region_create(path, &l));
  setenv("VGPOOL_CONTAINER_DIR", dir, 1);
  char visible[VGP_MAX_DEVICES * VGP_UUID_MAX] = "";
  for (int i = 0; i < ndev; i++) {
    if (i > 0)
      strcat(visible, ",");
    strcat(visible, l.dev[i].uuid);
  }
  setenv("CUDA_VISIBLE_DEVICES", visible, 1);
}

/* Starts `name` as a helper with libvgpool.so preloaded. */
static inline pid_t ht_spawn(const char *name, char *const args[]) {
  char lib[4096];
  snprintf(lib, sizeof(lib), "%s/src/hook/libvgpool.so", vgp_test_build_dir());
  setenv("LD_PRELOAD", lib, 1);
  pid_t pid = vgp_test_spawnv(name, args);
  unsetenv("LD_PRELOAD");
  return pid;
}

static inline int ht_run(const char *name, char *const args[]) {
  return vgp_test_wait(ht_spawn(name, args));
}

/* Opens the container's region read-write for inspection. */
static inline void ht_open_region(struct vgp__region *h, const char *id) {
  char path[4300], err[512];
  snprintf(path, sizeof(path), "%s/%s/region", vgp_test_tmpdir(), id);
  if (vgp__region_open(h, path, 1, err, sizeof(err)) < 0)
    vgp_test_fail(__FILE__, __LINE__, "%s", err);
}

#endif
