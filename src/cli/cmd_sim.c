/*
 * cmd_sim.c - `vgpool sim`: look at, reset and select the simulated GPU
 * node.
 *
 *   vgpool sim [show] [--json]   the node as nvidia-smi shows a real one:
 *                                driver version, each device (index, name,
 *                                UUID, bus id, memory, utilization), then
 *                                the processes using them
 *   vgpool sim reset [--force]   remove the node's state file and create it
 *                                again from the environment; refused while
 *                                processes are attached, or when the file
 *                                is not a vgpool node state, unless --force
 *   vgpool sim env               the shell lines that make programs load the
 *                                simulated libcuda.so.1/libnvidia-ml.so.1
 *
 * `show` reads the node exactly as the simulated NVML does (view.h), so the
 * two never disagree. Like the first program that initializes the
 * simulated driver, it creates the node from the environment
 * (VGPOOL_SIM_DEVICES or VGPOOL_SIM_CONFIG, VGPOOL_SIM_STATE) if there is
 * none yet. A malformed device spec or config, or a state file that is
 * foreign, truncated or from another vgpool version, is reported with the
 * token or file at fault and exit status 1.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "config.h"
#include "jsonout.h"
#include "node.h"
#include "nvml/view.h"
#include "vgpool_nvml.h"

#define VGP__SIM_ERR_LEN 1024

static void vgp__sim_usage(FILE *out) {
  fprintf(out,
          "usage: vgpool sim [show] [--json]\n"
          "       vgpool sim reset [--force]\n"
          "       vgpool sim env\n"
          "\n"
          "Shows, resets or selects the simulated GPU node.\n"
          "\n"
          "  show      devices, memory, utilization and processes (default)\n"
          "  reset     remove the node's state file and create it again from the\n"
          "            environment (refused while processes are attached)\n"
          "  env       print the shell lines that select the simulated driver:\n"
          "            eval \"$(vgpool sim env)\"\n"
          "\n"
          "  --json    machine-readable output for show\n"
          "  --force   reset even with processes attached, or a foreign file\n"
          "\n"
          "environment: VGPOOL_SIM_DEVICES (e.g. \"2xH100-80GB,1xT4\") or\n"
          "VGPOOL_SIM_CONFIG (a file) say which devices the node has;\n"
          "VGPOOL_SIM_STATE says where its state file is.\n");
}

/* The process name recorded in a slot, always terminated. */
static void vgp__slot_comm(const struct vgp_sim_proc_slot *s, char *buf,
                           size_t len) {
  size_t n = 0;
  while (n + 1 < len && n < sizeof(s->comm) && s->comm[n] != '\0') {
    buf[n] = s->comm[n];
    n++;
  }
  buf[n] = '\0';
}

/* Opens the node for `show`: created from the environment if missing,
 * read-only when the file is someone else's. Returns 0 or -errno with the
 * message in err. */
static int vgp__sim_open_for_show(struct vgp_sim_handle *h, int *ret_writable,
                                  char *err, size_t errlen) {
  int r = vgp_sim_open(h, err, errlen);
  if (r == 0) {
    *ret_writable = 1;
    return 0;
  }
  if (r != -EACCES && r != -EPERM && r != -EROFS)
    return r;
  r = vgp_sim_open_existing(h, 0, err, errlen);
  if (r == 0)
    *ret_writable = 0;
  return r;
}

static void vgp__sim_show_text(struct vgp_sim_handle *h, uint64_t now) {
  struct vgp_sim_node *node = h->node;
  unsigned cuda = node->driver_version;
  printf("Simulated GPU node  %s\n", h->path);
  printf("Devices: %.*s\n", (int)sizeof(node->spec), node->spec);
  printf("Driver Version: %.*s    NVML Version: %s.%.*s    CUDA Version: %u.%u\n\n",
         (int)sizeof(node->driver_version_string), node->driver_version_string,
         NVML_API_VERSION_STR, (int)sizeof(node->driver_version_string),
         node->driver_version_string, cuda / 1000, cuda % 1000 / 10);
  printf("GPU  Name                        Bus-Id              Memory-Usage          GPU-Util  Mem-Util\n");
  for (unsigned d = 0; d < node->device_count && d < VGP_SIM_MAX_DEVICES; d++) {
    const struct vgp_sim_device_config *c = &node->cfg[d];
    unsigned gpu, mem;
    vgp_view_device_util(node, d, now, &gpu, &mem);
    uint64_t used = vgp_view_used_bytes(h, d);
    printf("%3u  %-26.26s  %-16.16s  %7lluMiB / %7lluMiB  %7u%%  %7u%%\n", d,
           c->name, c->pci_bus_id, (unsigned long long)(used >> 20),
           (unsigned long long)(c->total_memory >> 20), gpu, mem);
    if (c->numa_node >= 0)
      printf("     %-42.48s  NUMA node %d\n", c->uuid, c->numa_node);
    else
      printf("     %-42.48s  NUMA node -\n", c->uuid);
  }
  printf("\nProcesses:\n");
  printf("GPU  PID       Process name        GPU Memory\n");
  int any = 0;
  for (unsigned d = 0; d < node->device_count && d < VGP_SIM_MAX_DEVICES; d++) {
    for (int s = 0; s < VGP_SIM_MAX_PROCS; s++) {
      uint32_t pid;
      uint64_t used;
      char comm[32];
      if (!vgp_view_slot_on_device(h, s, d, &pid, &used))
        continue;
      vgp__slot_comm(&node->slots[s], comm, sizeof(comm));
      printf("%3u  %-8u  %-16s  %9lluMiB\n", d, pid, comm,
             (unsigned long long)(used >> 20));
      any = 1;
    }
  }
  if (!any)
    printf("  No running processes found\n");
}

static void vgp__sim_show_json(struct vgp_sim_handle *h, uint64_t now) {
  struct vgp_sim_node *node = h->node;
  FILE *out = stdout;
  fprintf(out, "{\"state_file\": ");
  vgp__json_string_n(out, h->path, sizeof(h->path));
  fprintf(out, ", \"spec\": ");
  vgp__json_string_n(out, node->spec, sizeof(node->spec));
  fprintf(out, ", \"driver_version\": ");
  vgp__json_string_n(out, node->driver_version_string, sizeof(node->driver_version_string));
  fprintf(out, ", \"nvml_version\": \"%s.", NVML_API_VERSION_STR);
  fprintf(out, "%.*s\"", (int)sizeof(node->driver_version_string),
          node->driver_version_string);
  fprintf(out, ", \"cuda_driver_version\": %u, \"devices\": [", node->driver_version);
  for (unsigned d = 0; d < node->device_count && d < VGP_SIM_MAX_DEVICES; d++) {
    const struct vgp_sim_device_config *c = &node->cfg[d];
    unsigned gpu, mem;
    vgp_view_device_util(node, d, now, &gpu, &mem);
    uint64_t used = vgp_view_used_bytes(h, d);
    fprintf(out, "%s{\"index\": %u, \"name\": ", d ? ", " : "", d);
    vgp__json_string_n(out, c->name, sizeof(c->name));
    fprintf(out, ", \"model\": ");
    vgp__json_string_n(out, c->model, sizeof(c->model));
    fprintf(out, ", \"uuid\": ");
    vgp__json_string_n(out, c->uuid, sizeof(c->uuid));
    fprintf(out, ", \"pci_bus_id\": ");
    vgp__json_string_n(out, c->pci_bus_id, sizeof(c->pci_bus_id));
    fprintf(out,
            ", \"numa_node\": %d, \"memory_total\": %llu, \"memory_used\": %llu, "
            "\"memory_free\": %llu, \"utilization_gpu\": %u, "
            "\"utilization_memory\": %u}",
            c->numa_node, (unsigned long long)c->total_memory,
            (unsigned long long)used,
            (unsigned long long)(c->total_memory - used), gpu, mem);
  }
  fprintf(out, "], \"processes\": [");
  int first = 1;
  for (unsigned d = 0; d < node->device_count && d < VGP_SIM_MAX_DEVICES; d++) {
    for (int s = 0; s < VGP_SIM_MAX_PROCS; s++) {
      uint32_t pid;
      uint64_t used;
      char comm[32];
      if (!vgp_view_slot_on_device(h, s, d, &pid, &used))
        continue;
      vgp__slot_comm(&node->slots[s], comm, sizeof(comm));
      fprintf(out, "%s{\"device\": %u, \"pid\": %u, \"name\": ", first ? "" : ", ",
              d, pid);
      vgp__json_string_n(out, comm, sizeof(comm));
      fprintf(out, ", \"memory_used\": %llu}", (unsigned long long)used);
      first = 0;
    }
  }
  fprintf(out, "]}\n");
}

static int vgp__sim_show(int json) {
  struct vgp_sim_handle h;
  char err[VGP__SIM_ERR_LEN];
  int writable = 0;
  err[0] = '\0';
  int r = vgp__sim_open_for_show(&h, &writable, err, sizeof(err));
  if (r < 0) {
    fprintf(stderr, "vgpool sim: %s\n", err[0] ? err : strerror(-r));
    return VGP_EXIT_FAILURE;
  }
  /* Give dead processes' slots back, as the driver would have: the figures
   * below leave them out anyway, this frees the slots for others. */
  if (writable)
    vgp_sim_reclaim_dead(&h);
  uint64_t now = vgp__now_ns();
  if (json)
    vgp__sim_show_json(&h, now);
  else
    vgp__sim_show_text(&h, now);
  vgp_sim_close(&h);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "vgpool sim: cannot write the output: %s\n", strerror(errno));
    return VGP_EXIT_FAILURE;
  }
  return VGP_EXIT_OK;
}

/* Lists the processes attached to the node (alive and owning a slot) into
 * out; returns how many, or -errno from opening its state file. */
static int vgp__sim_attached(char *out, size_t len, char *err, size_t errlen) {
  struct vgp_sim_handle h;
  size_t used = 0;
  int n = 0;
  int r = vgp_sim_open_existing(&h, 0, err, errlen);
  if (r < 0)
    return r;
  out[0] = '\0';
  for (int s = 0; s < VGP_SIM_MAX_PROCS; s++) {
    struct vgp_sim_proc_slot *slot = &h.node->slots[s];
    if (__atomic_load_n(&slot->state, __ATOMIC_ACQUIRE) == VGP_SIM_SLOT_FREE ||
        !vgp_sim_slot_alive(&h, s))
      continue;
    char comm[32];
    vgp__slot_comm(slot, comm, sizeof(comm));
    int k = snprintf(out + used, len - used, "%s%d (%s)", n ? ", " : "",
                     (int)__atomic_load_n(&slot->pid, __ATOMIC_RELAXED), comm);
    if (k > 0 && (size_t)k < len - used)
      used += (size_t)k;
    n++;
  }
  vgp_sim_close(&h);
  return n;
}

static int vgp__sim_reset(int force) {
  struct vgp_sim_device_config cfg[VGP_SIM_MAX_DEVICES];
  char source[512], err[VGP__SIM_ERR_LEN], path[4096], pids[1024];

  /* Check what the new node would be made of before touching the old one. */
  err[0] = '\0';
  memset(cfg, 0, sizeof(cfg));
  if (vgp_sim_config_from_env(cfg, VGP_SIM_MAX_DEVICES, source, sizeof(source),
                              err, sizeof(err)) < 0) {
    fprintf(stderr, "vgpool sim reset: %s\n", err);
    return VGP_EXIT_FAILURE;
  }
  if (vgp_sim_state_path(path, sizeof(path)) < 0) {
    fprintf(stderr, "vgpool sim reset: the state file path is too long\n");
    return VGP_EXIT_FAILURE;
  }
  int n = vgp__sim_attached(pids, sizeof(pids), err, sizeof(err));
  if (n > 0 && !force) {
    fprintf(stderr,
            "vgpool sim reset: %d process%s attached to the simulated node %s: "
            "%s; stop %s first, or use --force (they keep the old node)\n",
            n, n == 1 ? " is" : "es are", path, pids, n == 1 ? "it" : "them");
    return VGP_EXIT_FAILURE;
  }
  if (n == -EPROTO && !force) {
    fprintf(stderr,
            "vgpool sim reset: %s is not a vgpool node state file; not removing "
            "it without --force (or point VGPOOL_SIM_STATE elsewhere)\n",
            path);
    return VGP_EXIT_FAILURE;
  }
  if (n == -EACCES || n == -EPERM) {
    fprintf(stderr, "vgpool sim reset: %s\n", err);
    return VGP_EXIT_FAILURE;
  }
  /* Stale (another layout version) and truncated files are exactly what
   * reset is for: remove them like a healthy one. */
  if (unlink(path) < 0 && errno != ENOENT) {
    fprintf(stderr, "vgpool sim reset: cannot remove %s: %s\n", path, strerror(errno));
    return VGP_EXIT_FAILURE;
  }
  struct vgp_sim_handle h;
  if (vgp_sim_open(&h, err, sizeof(err)) < 0) {
    fprintf(stderr, "vgpool sim reset: %s\n", err);
    return VGP_EXIT_FAILURE;
  }
  printf("reset simulated node %s: %u device%s (%s)\n", h.path,
         h.node->device_count, h.node->device_count == 1 ? "" : "s", source);
  vgp_sim_close(&h);
  return VGP_EXIT_OK;
}

/* Prints s single-quoted for a POSIX shell. */
static void vgp__shell_quote(const char *s) {
  putchar('\'');
  for (; *s; s++) {
    if (*s == '\'')
      fputs("'\\''", stdout);
    else
      putchar(*s);
  }
  putchar('\'');
}

/* The simulated driver lives beside the vgpool executable's directory in a
 * build tree (<build>/src/cli/vgpool, <build>/src/sim/libcuda.so.1); an
 * installed vgpool would keep it in <prefix>/lib/vgpool/sim. */
static int vgp__sim_env(void) {
  static const char *const candidates[] = {"../sim", "../lib/vgpool/sim"};
  const char *exe_dir = vgp_cli_exe_dir();
  char try[PATH_MAX], dir[PATH_MAX], lib[PATH_MAX + 32];
  for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
    if (snprintf(try, sizeof(try), "%s/%s", exe_dir, candidates[i]) >= (int)sizeof(try) ||
        realpath(try, dir) == NULL)
      continue;
    snprintf(lib, sizeof(lib), "%s/libcuda.so.1", dir);
    int has_cuda = access(lib, R_OK) == 0;
    snprintf(lib, sizeof(lib), "%s/libnvidia-ml.so.1", dir);
    int has_nvml = access(lib, R_OK) == 0;
    if (!has_cuda && !has_nvml)
      continue;
    printf("# the simulated GPU driver (%s%s%s); use: eval \"$(vgpool sim env)\"\n",
           has_cuda ? "libcuda.so.1" : "", has_cuda && has_nvml ? ", " : "",
           has_nvml ? "libnvidia-ml.so.1" : "");
    fputs("export LD_LIBRARY_PATH=", stdout);
    vgp__shell_quote(dir);
    fputs("${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n", stdout);
    if (!has_cuda)
      fprintf(stderr, "vgpool sim env: warning: %s has no libcuda.so.1 (not built?)\n", dir);
    return fflush(stdout) == 0 ? VGP_EXIT_OK : VGP_EXIT_FAILURE;
  }
  fprintf(stderr,
          "vgpool sim env: cannot find the simulated driver (libcuda.so.1, "
          "libnvidia-ml.so.1) in %s/../sim or %s/../lib/vgpool/sim\n",
          exe_dir, exe_dir);
  return VGP_EXIT_FAILURE;
}

int vgp_cmd_sim(int argc, char **argv) {
  const char *sub = NULL;
  int json = 0, force = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (strcmp(a, "--force") == 0 || strcmp(a, "-f") == 0) {
      force = 1;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      vgp__sim_usage(stdout);
      return VGP_EXIT_OK;
    } else if (a[0] == '-') {
      fprintf(stderr, "vgpool sim: unknown option '%s'\n\n", a);
      vgp__sim_usage(stderr);
      return VGP_EXIT_USAGE;
    } else if (sub == NULL) {
      sub = a;
    } else {
      fprintf(stderr, "vgpool sim: unexpected argument '%s'\n\n", a);
      vgp__sim_usage(stderr);
      return VGP_EXIT_USAGE;
    }
  }
  if (sub == NULL || strcmp(sub, "show") == 0) {
    if (force) {
      fprintf(stderr, "vgpool sim: '--force' applies to 'reset' only\n");
      return VGP_EXIT_USAGE;
    }
    return vgp__sim_show(json);
  }
  if (strcmp(sub, "reset") == 0 || strcmp(sub, "env") == 0) {
    if (json) {
      fprintf(stderr, "vgpool sim: '--json' applies to 'show' only\n");
      return VGP_EXIT_USAGE;
    }
    if (sub[0] == 'r')
      return vgp__sim_reset(force);
    if (force) {
      fprintf(stderr, "vgpool sim: '--force' applies to 'reset' only\n");
      return VGP_EXIT_USAGE;
    }
    return vgp__sim_env();
  }
  fprintf(stderr, "vgpool sim: unknown subcommand '%s'\n\n", sub);
  vgp__sim_usage(stderr);
  return VGP_EXIT_USAGE;
}
