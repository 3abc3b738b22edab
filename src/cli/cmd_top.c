/*
 * cmd_top.c - `vgpool top`: what every GPU and every container on this
 * node is using, against its limits.
 *
 *   vgpool top [--once] [--json] [--interval SEC]
 *
 * Each refresh shows, per device (from NVML, when it can be loaded): index,
 * name, UUID, memory used / total, utilization, and the sum of the memory
 * quotas containers hold there; then, per container under
 * <root>/containers/ (whatever made it: the agent or `vgpool run`): its
 * priority, and per device its memory used / limit, peak, allocations
 * refused for the quota, compute share target and achieved share, and
 * policy; and its live processes with what each is charged per device.
 *
 * Reading is lock-free (the region's totals are atomics). Slots of
 * processes that died are reclaimed when seen — top opens each region
 * writable when it may, read-only otherwise (then dead processes are only
 * hidden). A container whose limits or region file is missing, foreign,
 * truncated or from another version is shown as an error line naming the
 * file and the problem; it never stops the display.
 *
 * --once prints one refresh and exits 0 (for scripts and tests). Otherwise
 * top refreshes every --interval seconds (default 2) until SIGINT or
 * SIGTERM, redrawing the screen only when stdout is a terminal; piped, it
 * prints one refresh after another. --json prints each refresh as one JSON
 * object on one line (JSON Lines); the schema is in docs/run-and-top.md.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "container.h"
#include "jsonout.h"
#include "nvml_view.h"
#include "region.h"
#include "strutil.h"
#include "vgpool/limits.h"
#include "vgpool/paths.h"
#include "vgpool/units.h"

#define VGP__TOP_ERR_MAX 512
#define VGP__TOP_DEFAULT_INTERVAL_S 2.0
#define VGP__TOP_MAX_INTERVAL_S 86400.0

struct vgp__top_opts {
  int once;
  int json;
  double interval_s;
};

/* One device of one container, copied out of its region. */
struct vgp__top_cdev {
  char uuid[VGP_UUID_MAX];
  int nvml;              /* position in the NVML view, or -1 */
  uint64_t limit, used, peak, oom_events;
  unsigned cores;
  int policy;
  int have_achieved;     /* achieved below is valid */
  double achieved;       /* percent of the device's time */
};

struct vgp__top_proc {
  int pid;               /* as the process sees itself (its container's) */
  int host_pid;          /* in the node's PID namespace; 0 = unknown */
  char comm[17];
  uint64_t used[VGP_MAX_DEVICES];
};

struct vgp__top_container {
  char id[VGP_CONTAINER_ID_MAX];
  char region_err[VGP__TOP_ERR_MAX];  /* empty: the region was read */
  char limits_err[VGP__TOP_ERR_MAX];  /* empty: the limits file is fine */
  int priority;
  int oversubscribe;
  int writable;          /* dead processes could be reclaimed */
  int reclaimed;         /* slots of dead processes reclaimed now */
  unsigned ndev;
  struct vgp__top_cdev dev[VGP_MAX_DEVICES];
  unsigned nprocs;
  struct vgp__top_proc *procs;
};

/* Everything one refresh shows. */
struct vgp__top_frame {
  char root[VGP_CLI_PATH_MAX];
  int have_nvml;
  char nvml_err[VGP_NVML_ERR_MAX];
  struct vgp_nvml_view view;
  size_t ncontainers;
  int truncated;         /* more containers than VGP_CONTAINER_LIST_MAX */
  char list_err[VGP__TOP_ERR_MAX];
  struct vgp__top_container *containers;
};

static void vgp__top_usage(FILE *out) {
  fprintf(out,
          "usage: vgpool top [--once] [--json] [--interval SEC]\n"
          "\n"
          "Shows each GPU (memory, utilization, quotas held on it) and each container\n"
          "on this node: memory used / limit, peak, allocations refused for the quota,\n"
          "compute share target and achieved, priority, and its live processes.\n"
          "\n"
          "  --once           print once and exit\n"
          "  --json           one JSON object per refresh, one per line\n"
          "  --interval SEC   seconds between refreshes (default %g; fractions allowed)\n"
          "\n"
          "The node directory is $VGPOOL_ROOT (default %s).\n",
          VGP__TOP_DEFAULT_INTERVAL_S, VGP_ROOT_DEFAULT);
}

static int vgp__top_parse(int argc, char **argv, struct vgp__top_opts *o) {
  memset(o, 0, sizeof(*o));
  o->interval_s = VGP__TOP_DEFAULT_INTERVAL_S;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--once") == 0) {
      o->once = 1;
    } else if (strcmp(arg, "--json") == 0) {
      o->json = 1;
    } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      vgp__top_usage(stdout);
      return 1;
    } else if (strncmp(arg, "--interval", 10) == 0 && (arg[10] == '\0' || arg[10] == '=')) {
      const char *v;
      if (arg[10] == '=') {
        v = arg + 11;
      } else if (i + 1 < argc) {
        v = argv[++i];
      } else {
        fprintf(stderr, "vgpool top: option '--interval' needs a value\n");
        return -1;
      }
      char *end;
      errno = 0;
      double s = strtod(v, &end);
      if (v[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(s) || s <= 0 ||
          s > VGP__TOP_MAX_INTERVAL_S) {
        fprintf(stderr,
                "vgpool top: invalid --interval '%s': expected seconds, more than 0 and at "
                "most %g\n", v, VGP__TOP_MAX_INTERVAL_S);
        return -1;
      }
      o->interval_s = s;
    } else {
      fprintf(stderr, "vgpool top: unknown argument '%s' (see vgpool top --help)\n", arg);
      return -1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------- reading */

/* How old a published achieved share may be before top reads it as "ran
 * nothing lately": the controller publishes about every sample period
 * (a sixth of a second) while any process of the container is alive. */
#define VGP__TOP_ACHIEVED_STALE_NS (5ull * 1000000000ull)

/* The compute share a container achieved on a device over about the last
 * second, in percent of the device's time, as its compute-share controller
 * in libvgpool.so publishes it in the region (VGP_CTL_ACHIEVED_*). Returns
 * -ENODATA when nothing was ever measured (no process of the container has
 * launched work there); a stale figure reads as 0: nothing ran since. */
static int vgp__top_achieved_share(const struct vgp_region_device *dv, double *ret_percent) {
  uint64_t at = __atomic_load_n(&dv->ctl[VGP_CTL_ACHIEVED_NS], __ATOMIC_ACQUIRE);
  uint64_t ppm = __atomic_load_n(&dv->ctl[VGP_CTL_ACHIEVED_PPM], __ATOMIC_ACQUIRE);
  if (at == 0)
    return -ENODATA;
  if (ppm > 1000000)
    ppm = 1000000; /* a torn or foreign write must not show over 100% */
  uint64_t now = vgp__now_ns();
  *ret_percent = now > at && now - at > VGP__TOP_ACHIEVED_STALE_NS ? 0.0 : (double)ppm / 1e4;
  return 0;
}

/* Copies a slot's comm, which need not be terminated in the file. */
static void vgp__top_comm(const struct vgp_region_slot *s, char *buf, size_t len) {
  size_t n = 0;
  while (n + 1 < len && n < sizeof(s->comm) && s->comm[n] != '\0') {
    char c = s->comm[n];
    buf[n++] = (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  buf[n] = '\0';
}

/* Reads one container: its limits file (only to check it) and its region.
 * Problems are recorded in c's error strings, never returned: one broken
 * container must not hide the others. */
static void vgp__top_read_container(const char *containers_dir, const char *id,
                                    const struct vgp_nvml_view *view, int have_nvml,
                                    struct vgp__top_container *c) {
  char path[VGP_CLI_PATH_MAX + VGP_CONTAINER_ID_MAX + 16];
  struct vgp_limits *limits = malloc(sizeof(*limits));
  struct vgp__region h;

  memset(c, 0, sizeof(*c));
  vgp__strlcpy(c->id, id, sizeof(c->id));

  snprintf(path, sizeof(path), "%s/%s/%s", containers_dir, id, VGP_LIMITS_NAME);
  if (limits == NULL)
    vgp__strlcpy(c->limits_err, "out of memory", sizeof(c->limits_err));
  else
    vgp_limits_load(path, limits, c->limits_err, sizeof(c->limits_err));
  free(limits);

  snprintf(path, sizeof(path), "%s/%s/%s", containers_dir, id, VGP_REGION_NAME);
  int r = vgp__region_open(&h, path, 1, c->region_err, sizeof(c->region_err));
  if (r == -EACCES || r == -EPERM || r == -EROFS)
    r = vgp__region_open(&h, path, 0, c->region_err, sizeof(c->region_err));
  else if (r == 0)
    c->writable = 1;
  if (r < 0)
    return;
  c->region_err[0] = '\0';

  struct vgp_region *reg = h.r;
  if (c->writable)
    c->reclaimed = vgp__region_reclaim(&h);
  c->priority = __atomic_load_n(&reg->priority, __ATOMIC_RELAXED);
  c->oversubscribe = __atomic_load_n(&reg->oversubscribe, __ATOMIC_RELAXED) != 0;
  unsigned ndev = __atomic_load_n(&reg->device_count, __ATOMIC_ACQUIRE);
  if (ndev > VGP_MAX_DEVICES)
    ndev = VGP_MAX_DEVICES;
  c->ndev = ndev;
  for (unsigned d = 0; d < ndev; d++) {
    struct vgp_region_device *rd = &reg->dev[d];
    struct vgp__top_cdev *cd = &c->dev[d];
    /* The UUID is written once, before device_count counts it; it is
     * copied with a bound in case the file was scribbled on. */
    memcpy(cd->uuid, rd->uuid, sizeof(cd->uuid) - 1);
    cd->uuid[sizeof(cd->uuid) - 1] = '\0';
    cd->nvml = have_nvml ? vgp_nvml_find_uuid(view, cd->uuid) : -1;
    cd->limit = __atomic_load_n(&rd->limit, __ATOMIC_RELAXED);
    cd->used = __atomic_load_n(&rd->used, __ATOMIC_ACQUIRE);
    cd->peak = __atomic_load_n(&rd->peak, __ATOMIC_RELAXED);
    cd->oom_events = __atomic_load_n(&rd->oom_events, __ATOMIC_RELAXED);
    cd->cores = __atomic_load_n(&rd->cores, __ATOMIC_RELAXED);
    cd->policy = (int)__atomic_load_n(&rd->policy, __ATOMIC_RELAXED);
    cd->have_achieved = vgp__top_achieved_share(rd, &cd->achieved) == 0;
  }

  unsigned live = 0;
  int alive[VGP_REGION_MAX_PROCS];
  for (int s = 0; s < VGP_REGION_MAX_PROCS; s++) {
    alive[s] = __atomic_load_n(&reg->slots[s].state, __ATOMIC_ACQUIRE) ==
                   VGP_REGION_SLOT_ACTIVE &&
               vgp__region_slot_alive(&h, s);
    live += (unsigned)alive[s];
  }
  if (live > 0) {
    c->procs = calloc(live, sizeof(*c->procs));
    if (c->procs == NULL) {
      vgp__strlcpy(c->region_err, "out of memory listing processes", sizeof(c->region_err));
      vgp__region_close(&h);
      return;
    }
  }
  for (int s = 0; s < VGP_REGION_MAX_PROCS && c->nprocs < live; s++) {
    if (!alive[s])
      continue;
    const struct vgp_region_slot *slot = &reg->slots[s];
    struct vgp__top_proc *p = &c->procs[c->nprocs++];
    p->pid = __atomic_load_n(&slot->pid, __ATOMIC_RELAXED);
    p->host_pid = __atomic_load_n(&slot->host_pid, __ATOMIC_RELAXED);
    vgp__top_comm(slot, p->comm, sizeof(p->comm));
    for (unsigned d = 0; d < ndev; d++)
      p->used[d] = __atomic_load_n(&slot->used[d], __ATOMIC_RELAXED);
  }
  vgp__region_close(&h);
}

static void vgp__top_frame_free(struct vgp__top_frame *f) {
  for (size_t i = 0; i < f->ncontainers; i++)
    free(f->containers[i].procs);
  free(f->containers);
  f->containers = NULL;
  f->ncontainers = 0;
}

/* Reads everything one refresh shows into f. */
static void vgp__top_frame_read(struct vgp__top_frame *f, struct vgp_nvml *nvml) {
  char containers_dir[VGP_CLI_PATH_MAX];
  char(*ids)[VGP_CONTAINER_ID_MAX] = NULL;
  size_t count = 0;
  int r;

  f->list_err[0] = '\0';
  f->have_nvml = 0;
  if (nvml != NULL) {
    if (vgp_nvml_snapshot(nvml, &f->view, f->nvml_err, sizeof(f->nvml_err)) == 0)
      f->have_nvml = 1;
  }
  if ((r = vgp_root_dir(f->root, sizeof(f->root), 0)) < 0 ||
      (r = vgp_containers_dir(containers_dir, sizeof(containers_dir), 0)) < 0) {
    vgp__errf(f->list_err, sizeof(f->list_err), "cannot find the node directory: %s",
              strerror(-r));
    return;
  }
  r = vgp_container_list(containers_dir, &ids, &count, &f->truncated);
  if (r < 0) {
    vgp__errf(f->list_err, sizeof(f->list_err), "cannot list %s: %s", containers_dir,
              strerror(-r));
    return;
  }
  if (count > 0) {
    f->containers = calloc(count, sizeof(*f->containers));
    if (f->containers == NULL) {
      vgp__errf(f->list_err, sizeof(f->list_err), "out of memory for %zu containers", count);
      free(ids);
      return;
    }
  }
  for (size_t i = 0; i < count; i++)
    vgp__top_read_container(containers_dir, ids[i], &f->view, f->have_nvml,
                            &f->containers[i]);
  f->ncontainers = count;
  free(ids);
}

/* ------------------------------------------------------------- text */

/* How a container's device is labelled: its NVML index, or (without NVML,
 * or for a device NVML does not list) the start of its UUID. */
static void vgp__top_dev_label(const struct vgp__top_frame *f, const struct vgp__top_cdev *d,
                               char *buf, size_t len) {
  if (d->nvml >= 0)
    snprintf(buf, len, "%u", f->view.dev[d->nvml].index);
  else
    snprintf(buf, len, "%.12s", d->uuid);
}

static const char *vgp__top_policy(int policy) {
  return policy == VGP_POLICY_ELASTIC ? "elastic" : "hard";
}

/* Sum of the memory quotas containers hold on NVML device i, and how many
 * containers use it. */
static uint64_t vgp__top_quota_sum(const struct vgp__top_frame *f, unsigned i,
                                   unsigned *ret_containers) {
  uint64_t sum = 0;
  unsigned n = 0;
  for (size_t k = 0; k < f->ncontainers; k++) {
    const struct vgp__top_container *c = &f->containers[k];
    for (unsigned d = 0; d < c->ndev; d++) {
      if (c->dev[d].nvml != (int)i)
        continue;
      sum += c->dev[d].limit;
      n++;
    }
  }
  *ret_containers = n;
  return sum;
}

static void vgp__top_print_text(const struct vgp__top_frame *f) {
  char a[32], b[32], c3[32];
  time_t now = time(NULL);
  struct tm tm;
  char when[32] = "";
  if (localtime_r(&now, &tm) != NULL)
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
  printf("vgpool top  %s  root %s\n\n", when, f->root);

  if (!f->have_nvml) {
    printf("GPUs: not shown: %s\n", f->nvml_err);
  } else if (f->view.count == 0) {
    printf("GPUs: NVML reports none\n");
  } else {
    printf("%3s  %-26s  %11s / %-11s  %5s  %-19s  %s\n", "GPU", "NAME", "MEMORY USED",
           "TOTAL", "UTIL", "QUOTAS (CONTAINERS)", "UUID");
    for (unsigned i = 0; i < f->view.count; i++) {
      const struct vgp_nvml_device *d = &f->view.dev[i];
      unsigned nc;
      uint64_t q = vgp__top_quota_sum(f, i, &nc);
      char util[8], quotas[48];
      if (d->have_util)
        snprintf(util, sizeof(util), "%u%%", d->util_gpu);
      else
        snprintf(util, sizeof(util), "-");
      if (nc == 0)
        snprintf(quotas, sizeof(quotas), "-");
      else
        snprintf(quotas, sizeof(quotas), "%s (%u)", vgp_format_size(q, c3, sizeof(c3)), nc);
      printf("%3u  %-26.26s  %11s / %-11s  %5s  %-19s  %s\n", d->index, d->name,
             vgp_format_size(d->memory_used, a, sizeof(a)),
             vgp_format_size(d->memory_total, b, sizeof(b)), util, quotas, d->uuid);
    }
  }
  printf("\n");

  if (f->list_err[0] != '\0') {
    printf("containers: %s\n", f->list_err);
    return;
  }
  if (f->ncontainers == 0) {
    printf("No containers.\n");
    return;
  }
  /* Columns sized to this refresh's longest id and device label, so
   * nothing is cut off. */
  int idw = 9, devw = 3;
  for (size_t k = 0; k < f->ncontainers; k++) {
    const struct vgp__top_container *c = &f->containers[k];
    int n = (int)strlen(c->id);
    if (n > idw)
      idw = n;
    for (unsigned d = 0; d < c->ndev; d++) {
      char label[24];
      vgp__top_dev_label(f, &c->dev[d], label, sizeof(label));
      if ((int)strlen(label) > devw)
        devw = (int)strlen(label);
    }
  }
  printf("%-*s  PRIO  %*s  %11s / %-11s  %11s  %5s  %5s  %8s  %s\n", idw, "CONTAINER", devw,
         "GPU", "MEMORY USED", "LIMIT", "PEAK", "OOM", "CORES", "ACHIEVED", "POLICY");
  for (size_t k = 0; k < f->ncontainers; k++) {
    const struct vgp__top_container *c = &f->containers[k];
    if (c->region_err[0] != '\0') {
      printf("%-*s  error: %s\n", idw, c->id, c->region_err);
      if (c->limits_err[0] != '\0')
        printf("%-*s  error: %s\n", idw, "", c->limits_err);
      continue;
    }
    if (c->ndev == 0)
      printf("%-*s  %4d  %*s  (no devices)\n", idw, c->id, c->priority, devw, "-");
    for (unsigned d = 0; d < c->ndev; d++) {
      const struct vgp__top_cdev *cd = &c->dev[d];
      char label[24], achieved[16], limit[32];
      vgp__top_dev_label(f, cd, label, sizeof(label));
      if (cd->have_achieved)
        snprintf(achieved, sizeof(achieved), "%.1f%%", cd->achieved);
      else
        snprintf(achieved, sizeof(achieved), "n/a");
      if (cd->limit == 0)
        snprintf(limit, sizeof(limit), "none");
      else
        vgp_format_size(cd->limit, limit, sizeof(limit));
      char prio[16] = "";
      if (d == 0)
        snprintf(prio, sizeof(prio), "%d", c->priority);
      printf("%-*s  %4s  %*s  %11s / %-11s  %11s  %5llu  %4u%%  %8s  %s\n", idw,
             d == 0 ? c->id : "", prio, devw, label, vgp_format_size(cd->used, a, sizeof(a)),
             limit, vgp_format_size(cd->peak, b, sizeof(b)),
             (unsigned long long)cd->oom_events, cd->cores, achieved,
             vgp__top_policy(cd->policy));
    }
    if (c->limits_err[0] != '\0')
      printf("%-*s  error: %s\n", idw, "", c->limits_err);
    if (c->reclaimed > 0)
      printf("%-*s  reclaimed %d slot%s of dead processes\n", idw, "", c->reclaimed,
             c->reclaimed == 1 ? "" : "s");
    for (unsigned p = 0; p < c->nprocs; p++) {
      const struct vgp__top_proc *pr = &c->procs[p];
      char host[32] = "";
      /* Inside a container the process knows itself by another pid than
       * the node (and nvidia-smi) does; show both when they differ. */
      if (pr->host_pid != 0 && pr->host_pid != pr->pid)
        snprintf(host, sizeof(host), " (node pid %d)", pr->host_pid);
      printf("%-*s    pid %-7d %-16s%s", idw, "", pr->pid, pr->comm, host);
      for (unsigned d = 0; d < c->ndev; d++) {
        char label[24];
        vgp__top_dev_label(f, &c->dev[d], label, sizeof(label));
        printf("  gpu%s %s", label, vgp_format_size(pr->used[d], a, sizeof(a)));
      }
      printf("\n");
    }
  }
  if (f->truncated)
    printf("(only the first %d containers are shown)\n", VGP_CONTAINER_LIST_MAX);
}

/* ------------------------------------------------------------- JSON */

static void vgp__top_print_json(const struct vgp__top_frame *f) {
  FILE *out = stdout;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  fprintf(out, "{\"time\": %lld.%03ld, \"root\": ", (long long)ts.tv_sec,
          ts.tv_nsec / 1000000);
  vgp__json_string(out, f->root);
  fprintf(out, ", \"nvml\": %s, \"nvml_error\": ", f->have_nvml ? "true" : "false");
  vgp__json_string(out, f->have_nvml ? NULL : f->nvml_err);
  fprintf(out, ", \"devices\": [");
  for (unsigned i = 0; f->have_nvml && i < f->view.count; i++) {
    const struct vgp_nvml_device *d = &f->view.dev[i];
    unsigned nc;
    uint64_t q = vgp__top_quota_sum(f, i, &nc);
    fprintf(out, "%s{\"index\": %u, \"name\": ", i ? ", " : "", d->index);
    vgp__json_string(out, d->name);
    fprintf(out, ", \"uuid\": ");
    vgp__json_string(out, d->uuid);
    fprintf(out, ", \"memory_total\": %llu, \"memory_used\": %llu, ",
            (unsigned long long)d->memory_total, (unsigned long long)d->memory_used);
    if (d->have_util)
      fprintf(out, "\"utilization_gpu\": %u, \"utilization_memory\": %u, ", d->util_gpu,
              d->util_memory);
    else
      fprintf(out, "\"utilization_gpu\": null, \"utilization_memory\": null, ");
    fprintf(out, "\"quota_total\": %llu, \"containers\": %u}", (unsigned long long)q, nc);
  }
  fprintf(out, "], \"containers_error\": ");
  vgp__json_string(out, f->list_err[0] != '\0' ? f->list_err : NULL);
  fprintf(out, ", \"containers_truncated\": %s, \"containers\": [",
          f->truncated ? "true" : "false");
  for (size_t k = 0; k < f->ncontainers; k++) {
    const struct vgp__top_container *c = &f->containers[k];
    int ok = c->region_err[0] == '\0';
    fprintf(out, "%s{\"id\": ", k ? ", " : "");
    vgp__json_string(out, c->id);
    fprintf(out, ", \"errors\": [");
    int first = 1;
    if (!ok) {
      vgp__json_string(out, c->region_err);
      first = 0;
    }
    if (c->limits_err[0] != '\0') {
      fprintf(out, "%s", first ? "" : ", ");
      vgp__json_string(out, c->limits_err);
    }
    fprintf(out, "]");
    if (!ok) {
      fprintf(out, ", \"priority\": null, \"oversubscribe\": null, \"reclaimed\": 0, "
                   "\"devices\": [], \"processes\": []}");
      continue;
    }
    fprintf(out, ", \"priority\": %d, \"oversubscribe\": %s, \"reclaimed\": %d, \"devices\": [",
            c->priority, c->oversubscribe ? "true" : "false", c->reclaimed);
    for (unsigned d = 0; d < c->ndev; d++) {
      const struct vgp__top_cdev *cd = &c->dev[d];
      fprintf(out, "%s{\"uuid\": ", d ? ", " : "");
      vgp__json_string(out, cd->uuid);
      if (cd->nvml >= 0)
        fprintf(out, ", \"index\": %u", f->view.dev[cd->nvml].index);
      else
        fprintf(out, ", \"index\": null");
      fprintf(out,
              ", \"memory_limit\": %llu, \"memory_used\": %llu, \"memory_peak\": %llu, "
              "\"oom_events\": %llu, \"cores\": %u, \"policy\": \"%s\", \"achieved_share\": ",
              (unsigned long long)cd->limit, (unsigned long long)cd->used,
              (unsigned long long)cd->peak, (unsigned long long)cd->oom_events, cd->cores,
              vgp__top_policy(cd->policy));
      if (cd->have_achieved)
        fprintf(out, "%.2f}", cd->achieved);
      else
        fprintf(out, "null}");
    }
    fprintf(out, "], \"processes\": [");
    for (unsigned p = 0; p < c->nprocs; p++) {
      const struct vgp__top_proc *pr = &c->procs[p];
      fprintf(out, "%s{\"pid\": %d, ", p ? ", " : "", pr->pid);
      if (pr->host_pid != 0)
        fprintf(out, "\"host_pid\": %d, \"comm\": ", pr->host_pid);
      else
        fprintf(out, "\"host_pid\": null, \"comm\": ");
      vgp__json_string(out, pr->comm);
      fprintf(out, ", \"memory_used\": [");
      for (unsigned d = 0; d < c->ndev; d++)
        fprintf(out, "%s%llu", d ? ", " : "", (unsigned long long)pr->used[d]);
      fprintf(out, "]}");
    }
    fprintf(out, "]}");
  }
  fprintf(out, "]}\n");
}

/* ------------------------------------------------------------- main */

int vgp_cmd_top(int argc, char **argv) {
  struct vgp__top_opts o;
  struct vgp_nvml *nvml = NULL;
  int r = vgp__top_parse(argc, argv, &o);
  if (r != 0)
    return r > 0 ? VGP_EXIT_OK : VGP_EXIT_USAGE;

  /* The frame holds the NVML view (tens of KiB): heap, not stack. */
  struct vgp__top_frame *f = calloc(1, sizeof(*f));
  if (f == NULL) {
    fprintf(stderr, "vgpool top: out of memory\n");
    return VGP_EXIT_FAILURE;
  }
  /* Without NVML top still shows the containers; the device section says
   * why it is missing. */
  if (vgp_nvml_open(&nvml, f->nvml_err, sizeof(f->nvml_err)) < 0)
    nvml = NULL;

  /* SIGINT and SIGTERM end the loop; they are blocked and taken with
   * sigtimedwait, which is also the wait between refreshes, so a signal
   * can never slip in between checking and sleeping. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  if (!o.once)
    sigprocmask(SIG_BLOCK, &stop, NULL);
  int tty = isatty(STDOUT_FILENO);
  for (int n = 0;; n++) {
    vgp__top_frame_read(f, nvml);
    if (!o.once && tty && !o.json)
      fputs("\033[H\033[2J", stdout);
    else if (n > 0 && !o.json)
      fputs("\n", stdout);
    if (o.json)
      vgp__top_print_json(f);
    else
      vgp__top_print_text(f);
    vgp__top_frame_free(f);
    fflush(stdout);
    if (o.once || ferror(stdout))
      break;
    uint64_t ns = (uint64_t)(o.interval_s * 1e9);
    struct timespec ts = vgp__ns_to_timespec(ns);
    int sig;
    do
      sig = sigtimedwait(&stop, NULL, &ts);
    while (sig < 0 && errno == EINTR);
    if (sig > 0)
      break;
  }
  vgp_nvml_close(nvml);
  int failed = ferror(stdout);
  free(f);
  return failed ? VGP_EXIT_FAILURE : VGP_EXIT_OK;
}
