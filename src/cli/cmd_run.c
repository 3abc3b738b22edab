/*
 * cmd_run.c - `vgpool run`: run one command as a container with a slice of
 * the node's GPUs, without Kubernetes or an agent.
 *
 *   vgpool run [--memory SIZE] [--devices LIST] [--cores N]
 *              [--policy hard|elastic] [--priority N] [--oversubscribe]
 *              [--name ID] [--keep] [--lib PATH] [--] CMD [ARG...]
 *
 * It does what the node agent does for a pod, locally (DESIGN.md §2):
 * creates <root>/containers/<id>/, writes the container's limits file
 * (read-only) and creates its region, then runs CMD with three variables
 * set and nothing else in the environment changed:
 *
 *   LD_PRELOAD             libvgpool.so, ahead of anything already there
 *   VGPOOL_CONTAINER_DIR   the container directory (limits + region)
 *   CUDA_VISIBLE_DEVICES   the selected devices' UUIDs, in the order given
 *
 * vgpool stays as CMD's parent: it forwards SIGINT, SIGTERM and SIGHUP,
 * exits with CMD's status (128+N when CMD was killed by signal N), and
 * removes the container directory afterwards unless --keep is given.
 *
 * Devices are enumerated with NVML (nvml_view.h), so the UUIDs written
 * into the limits file are the ones the driver reports. Every argument is
 * checked before anything is created; bad usage exits 2 with a message
 * that names the offending token, CMD that cannot be executed exits 127.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "container.h"
#include "nvml_view.h"
#include "region.h"
#include "strutil.h"
#include "vgpool/limits.h"
#include "vgpool/paths.h"
#include "vgpool/units.h"

#define VGP__RUN_ERR_MAX 1024
#define VGP__RUN_LIB_NAME "libvgpool.so"
/* The longest LD_PRELOAD we build. ld.so itself has no fixed limit, but a
 * value this long is a mistake, not a configuration. */
#define VGP__RUN_PRELOAD_MAX (64 * 1024)

/* One item of --memory: either the default for every selected device
 * (selector NULL) or "SELECTOR=SIZE" for one device. */
struct vgp__run_mem {
  char selector[VGP_UUID_MAX + 16];
  const char *size;      /* the size as typed, for messages */
  uint64_t bytes;
};

struct vgp__run_opts {
  const char *name;
  const char *lib;
  const char *devices;   /* the --devices list as typed, or NULL: all */
  int have_memory_default;
  struct vgp__run_mem memory_default;
  unsigned nmemory;      /* per-device items */
  struct vgp__run_mem memory[VGP_MAX_DEVICES];
  unsigned cores;
  int policy;
  int priority;
  int oversubscribe;
  int keep;
  char **cmd;            /* NULL-terminated, from argv */
};

static void vgp__run_usage(FILE *out) {
  fprintf(out,
          "usage: vgpool run [options] [--] CMD [ARG...]\n"
          "\n"
          "Runs CMD as a container with a slice of this node's GPUs: a memory quota,\n"
          "a compute share and a priority per container, enforced by libvgpool.so.\n"
          "\n"
          "  --memory SIZE        memory quota on each selected device (4GiB, 1024M,\n"
          "                       1.5G; sizes are binary). Per device: 0=4GiB,1=8GiB,\n"
          "                       or a default plus exceptions: 4GiB,1=8GiB. A quota\n"
          "                       larger than the device is clamped to it. Default:\n"
          "                       no memory limit.\n"
          "  --devices LIST       devices to expose, in this order: NVML indices (as\n"
          "                       nvidia-smi numbers them) or UUIDs, in full or as a\n"
          "                       unique prefix, comma separated. Default: all.\n"
          "  --cores N            compute share in percent of each device, 1..100\n"
          "                       (default 100: no compute limit)\n"
          "  --policy hard|elastic  hard: never above the share (default); elastic:\n"
          "                       may use idle time, given back when others need it\n"
          "  --priority N         integer, lower wins (HAMi: 0 high, 1 low; default 1)\n"
          "  --oversubscribe      serve allocations from host memory when the device\n"
          "                       is full but the container is within its quota\n"
          "  --name ID            container id (A-Z a-z 0-9 . _ -, at most %d\n"
          "                       characters); default run-<pid>-<random>\n"
          "  --keep               keep the container directory after CMD ends\n"
          "  --lib PATH           libvgpool.so to preload (default: $VGPOOL_LIB, then\n"
          "                       the one built or installed beside vgpool)\n"
          "\n"
          "CMD runs with LD_PRELOAD, VGPOOL_CONTAINER_DIR and CUDA_VISIBLE_DEVICES set.\n"
          "vgpool exits with CMD's status (128+N if it was killed by signal N), 127 if\n"
          "CMD cannot be run, 2 for bad usage, 1 for other failures.\n",
          VGP_CONTAINER_ID_MAX - 1);
}

/* ------------------------------------------------------------- parsing */

/* Parses one memory size typed by the user; prints a message naming it and
 * returns -1 when it is not a usable quota. */
static int vgp__run_parse_size(const char *token, uint64_t *ret) {
  uint64_t bytes;
  int r = vgp_parse_size(token, &bytes);
  if (r == -ERANGE) {
    fprintf(stderr, "vgpool run: memory size '%s' in --memory is too large\n", token);
    return -1;
  }
  if (r < 0) {
    fprintf(stderr,
            "vgpool run: invalid memory size '%s' in --memory (examples: 4GiB, 1024M, "
            "1.5G, 1073741824)\n", token);
    return -1;
  }
  if (bytes == 0) {
    fprintf(stderr,
            "vgpool run: memory size '%s' in --memory is zero (leave --memory out for "
            "no memory limit)\n", token);
    return -1;
  }
  *ret = bytes;
  return 0;
}

/* Parses --memory: comma-separated items, each "SIZE" (the default, at
 * most once) or "SELECTOR=SIZE". Selectors are checked against the devices
 * later, when NVML has been asked. */
static int vgp__run_parse_memory(struct vgp__run_opts *o, char *list) {
  if (list[0] == '\0') {
    fprintf(stderr, "vgpool run: empty value '' for --memory\n");
    return -1;
  }
  /* strsep keeps empty items, so "4GiB,,1=2GiB" is refused rather than
   * silently read as two items. */
  char *save = list, *item;
  while ((item = strsep(&save, ",")) != NULL) {
    char *eq = strchr(item, '=');
    if (eq == NULL) {
      if (o->have_memory_default) {
        fprintf(stderr,
                "vgpool run: --memory has two default sizes ('%s' and '%s'); give "
                "per-device sizes as DEVICE=SIZE\n", o->memory_default.size, item);
        return -1;
      }
      if (vgp__run_parse_size(item, &o->memory_default.bytes) < 0)
        return -1;
      o->memory_default.size = item;
      o->have_memory_default = 1;
      continue;
    }
    if (o->nmemory == VGP_MAX_DEVICES) {
      fprintf(stderr, "vgpool run: --memory names more than %d devices at '%s'\n",
              VGP_MAX_DEVICES, item);
      return -1;
    }
    struct vgp__run_mem *m = &o->memory[o->nmemory];
    *eq = '\0';
    if (item[0] == '\0' || strlen(item) >= sizeof(m->selector)) {
      fprintf(stderr, "vgpool run: bad device '%s' in --memory item '%s=%s'\n", item, item,
              eq + 1);
      return -1;
    }
    vgp__strlcpy(m->selector, item, sizeof(m->selector));
    if (vgp__run_parse_size(eq + 1, &m->bytes) < 0)
      return -1;
    m->size = eq + 1;
    o->nmemory++;
  }
  return 0;
}

/* Returns the value of option argv[*i] ("--opt VALUE" or "--opt=VALUE"),
 * advancing *i, or NULL after printing a message when it is missing. */
static char *vgp__run_value(int argc, char **argv, int *i, const char *opt) {
  const char *arg = argv[*i];
  size_t n = strlen(opt);
  if (arg[n] == '=')
    return (char *)arg + n + 1;
  /* "--opt --" is a forgotten value, not a value of "--". */
  if (*i + 1 >= argc || strcmp(argv[*i + 1], "--") == 0) {
    fprintf(stderr, "vgpool run: option '%s' needs a value\n", opt);
    return NULL;
  }
  (*i)++;
  return argv[*i];
}

/* 1 if argv's option `arg` is `opt` with or without "=VALUE". */
static int vgp__run_is(const char *arg, const char *opt) {
  size_t n = strlen(opt);
  return strncmp(arg, opt, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* Parses the command line into o. Returns 0, 1 for --help (printed), or -1
 * after printing what is wrong. */
static int vgp__run_parse(int argc, char **argv, struct vgp__run_opts *o) {
  memset(o, 0, sizeof(*o));
  o->cores = 100;
  o->policy = VGP_POLICY_HARD;
  o->priority = 1;
  int i;
  for (i = 1; i < argc; i++) {
    char *arg = argv[i], *v;
    if (strcmp(arg, "--") == 0) {
      i++;
      break;
    }
    if (arg[0] != '-' || arg[1] == '\0')
      break; /* CMD starts here, as with env(1) and sudo(8) */
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      vgp__run_usage(stdout);
      return 1;
    } else if (strcmp(arg, "--keep") == 0) {
      o->keep = 1;
    } else if (strcmp(arg, "--oversubscribe") == 0) {
      o->oversubscribe = 1;
    } else if (vgp__run_is(arg, "--memory")) {
      if ((v = vgp__run_value(argc, argv, &i, "--memory")) == NULL ||
          vgp__run_parse_memory(o, v) < 0)
        return -1;
    } else if (vgp__run_is(arg, "--devices")) {
      if ((v = vgp__run_value(argc, argv, &i, "--devices")) == NULL)
        return -1;
      if (v[0] == '\0') {
        fprintf(stderr, "vgpool run: empty value '' for --devices\n");
        return -1;
      }
      o->devices = v;
    } else if (vgp__run_is(arg, "--cores")) {
      if ((v = vgp__run_value(argc, argv, &i, "--cores")) == NULL)
        return -1;
      if (vgp_parse_percent(v, 1, 100, &o->cores) < 0) {
        fprintf(stderr,
                "vgpool run: invalid --cores '%s': expected a whole number of percent "
                "from 1 to 100\n", v);
        return -1;
      }
    } else if (vgp__run_is(arg, "--policy")) {
      if ((v = vgp__run_value(argc, argv, &i, "--policy")) == NULL)
        return -1;
      if (strcmp(v, "hard") == 0) {
        o->policy = VGP_POLICY_HARD;
      } else if (strcmp(v, "elastic") == 0) {
        o->policy = VGP_POLICY_ELASTIC;
      } else {
        fprintf(stderr, "vgpool run: invalid --policy '%s': expected hard or elastic\n", v);
        return -1;
      }
    } else if (vgp__run_is(arg, "--priority")) {
      long p;
      if ((v = vgp__run_value(argc, argv, &i, "--priority")) == NULL)
        return -1;
      if (vgp_parse_int(v, -1000, 1000, &p) < 0) {
        fprintf(stderr,
                "vgpool run: invalid --priority '%s': expected an integer from -1000 to "
                "1000 (lower wins)\n", v);
        return -1;
      }
      o->priority = (int)p;
    } else if (vgp__run_is(arg, "--name")) {
      if ((v = vgp__run_value(argc, argv, &i, "--name")) == NULL)
        return -1;
      if (!vgp_container_id_valid(v)) {
        fprintf(stderr,
                "vgpool run: invalid --name '%s': use 1 to %d of the characters A-Z a-z "
                "0-9 . _ - (and not \".\" or \"..\")\n", v, VGP_CONTAINER_ID_MAX - 1);
        return -1;
      }
      o->name = v;
    } else if (vgp__run_is(arg, "--lib")) {
      if ((v = vgp__run_value(argc, argv, &i, "--lib")) == NULL)
        return -1;
      if (v[0] == '\0') {
        fprintf(stderr, "vgpool run: empty value '' for --lib\n");
        return -1;
      }
      o->lib = v;
    } else {
      fprintf(stderr, "vgpool run: unknown option '%s' (see vgpool run --help)\n", arg);
      return -1;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "vgpool run: no command given (usage: vgpool run [options] -- CMD "
                    "[ARG...])\n");
    return -1;
  }
  if (argv[i][0] == '\0') {
    fprintf(stderr, "vgpool run: empty command name ''\n");
    return -1;
  }
  o->cmd = argv + i;
  return 0;
}

/* ------------------------------------------------------------- devices */

/* Resolves --devices (or all devices) and --memory against the node into
 * the device entries of l. Returns 0, or -1 after printing a message
 * naming the bad token (bad usage). */
static int vgp__run_devices(const struct vgp__run_opts *o, const struct vgp_nvml_view *v,
                            struct vgp_limits *l) {
  char err[VGP__RUN_ERR_MAX];
  int sel[VGP_MAX_DEVICES];
  unsigned nsel = 0;

  if (o->devices == NULL) {
    if (v->count > VGP_MAX_DEVICES) {
      fprintf(stderr,
              "vgpool run: this node has %u devices and a container can have at most %d; "
              "choose some with --devices\n", v->count, VGP_MAX_DEVICES);
      return -1;
    }
    for (unsigned i = 0; i < v->count; i++)
      sel[nsel++] = (int)i;
  } else {
    char list[4096];
    if (vgp__strlcpy(list, o->devices, sizeof(list)) >= sizeof(list)) {
      fprintf(stderr, "vgpool run: --devices list is too long\n");
      return -1;
    }
    char *save = list, *item;
    while ((item = strsep(&save, ",")) != NULL) {
      int d = vgp_nvml_find(v, item, err, sizeof(err));
      if (d < 0) {
        if (item[0] == '\0')
          fprintf(stderr, "vgpool run: empty item '' in --devices '%s'\n", o->devices);
        else
          fprintf(stderr, "vgpool run: --devices: %s\n", err);
        return -1;
      }
      for (unsigned k = 0; k < nsel; k++) {
        if (sel[k] == d) {
          fprintf(stderr, "vgpool run: --devices names device %d (%s) twice, at '%s'\n", d,
                  v->dev[d].uuid, item);
          return -1;
        }
      }
      if (nsel == VGP_MAX_DEVICES) {
        fprintf(stderr, "vgpool run: --devices names more than %d devices, at '%s'\n",
                VGP_MAX_DEVICES, item);
        return -1;
      }
      sel[nsel++] = d;
    }
  }

  /* Per-device sizes: each must name a selected device, once. */
  uint64_t quota[VGP_MAX_DEVICES];
  const char *quota_token[VGP_MAX_DEVICES];
  for (unsigned k = 0; k < nsel; k++) {
    quota[k] = o->have_memory_default ? o->memory_default.bytes : 0;
    quota_token[k] = o->have_memory_default ? o->memory_default.size : NULL;
  }
  int named[VGP_MAX_DEVICES] = {0};
  for (unsigned m = 0; m < o->nmemory; m++) {
    const struct vgp__run_mem *mem = &o->memory[m];
    int d = vgp_nvml_find(v, mem->selector, err, sizeof(err));
    if (d < 0) {
      fprintf(stderr, "vgpool run: --memory: %s\n", err);
      return -1;
    }
    unsigned k;
    for (k = 0; k < nsel && sel[k] != d; k++)
      ;
    if (k == nsel) {
      fprintf(stderr,
              "vgpool run: --memory names device '%s', which is not among the selected "
              "devices (see --devices)\n", mem->selector);
      return -1;
    }
    if (named[k]) {
      fprintf(stderr, "vgpool run: --memory names device %d twice, at '%s'\n", d,
              mem->selector);
      return -1;
    }
    named[k] = 1;
    quota[k] = mem->bytes;
    quota_token[k] = mem->size;
  }

  l->ndevices = nsel;
  for (unsigned k = 0; k < nsel; k++) {
    const struct vgp_nvml_device *dev = &v->dev[sel[k]];
    struct vgp_device_limit *dl = &l->dev[k];
    vgp__strlcpy(dl->uuid, dev->uuid, sizeof(dl->uuid));
    dl->memory = quota[k];
    dl->cores = o->cores;
    dl->policy = o->policy;
    if (dl->memory > dev->memory_total && dev->memory_total > 0) {
      char want[32], have[32];
      fprintf(stderr,
              "vgpool run: warning: the memory quota %s (from '%s') is more than device %u "
              "(%s) has; using its total, %s\n",
              vgp_format_size(dl->memory, want, sizeof(want)), quota_token[k], dev->index,
              dev->uuid, vgp_format_size(dev->memory_total, have, sizeof(have)));
      dl->memory = dev->memory_total;
    }
  }
  return 0;
}

/* ------------------------------------------------------------- library */

/* Finds libvgpool.so (see the file comment for the order) and writes its
 * absolute path into buf. Returns 0, or -1 after printing why not. */
static int vgp__run_find_lib(const char *opt_lib, char *buf, size_t len) {
  char cand[2][PATH_MAX];
  const char *given = opt_lib;
  const char *from = "--lib";
  if (given == NULL) {
    const char *env = getenv("VGPOOL_LIB");
    if (env != NULL && env[0] != '\0') {
      given = env;
      from = "VGPOOL_LIB";
    }
  }
  char real[PATH_MAX];
  if (given != NULL) {
    if (realpath(given, real) == NULL || access(real, R_OK) != 0) {
      fprintf(stderr, "vgpool run: cannot use the library '%s' named by %s: %s\n", given, from,
              strerror(errno));
      return -1;
    }
  } else {
    const char *dir = vgp_cli_exe_dir();
    snprintf(cand[0], sizeof(cand[0]), "%s/../hook/%s", dir, VGP__RUN_LIB_NAME);
    snprintf(cand[1], sizeof(cand[1]), "%s/../lib/vgpool/%s", dir, VGP__RUN_LIB_NAME);
    int found = 0;
    for (int c = 0; c < 2 && !found; c++)
      found = realpath(cand[c], real) != NULL && access(real, R_OK) == 0;
    if (!found) {
      fprintf(stderr,
              "vgpool run: cannot find %s (looked for %s and %s); build it, or name it "
              "with --lib PATH or VGPOOL_LIB\n", VGP__RUN_LIB_NAME, cand[0], cand[1]);
      return -1;
    }
  }
  /* ld.so splits LD_PRELOAD at spaces and colons; such a path cannot be
   * preloaded, and would silently preload something else. */
  if (strpbrk(real, " :\t\n") != NULL) {
    fprintf(stderr,
            "vgpool run: the library path '%s' contains a space or a colon, which "
            "LD_PRELOAD cannot express; move it\n", real);
    return -1;
  }
  if (vgp__strlcpy(buf, real, len) >= len) {
    fprintf(stderr, "vgpool run: library path '%s' is too long\n", real);
    return -1;
  }
  return 0;
}

/* Sets LD_PRELOAD to lib followed by the items already there (without lib,
 * so nested runs do not list it twice). Returns 0 or -errno. */
static int vgp__run_set_preload(const char *lib) {
  const char *old = getenv("LD_PRELOAD");
  size_t cap = strlen(lib) + 1 + (old != NULL ? strlen(old) : 0) + 1;
  if (cap > VGP__RUN_PRELOAD_MAX)
    return -E2BIG;
  char *value = malloc(cap), *copy = NULL;
  if (value == NULL)
    return -ENOMEM;
  size_t used = (size_t)snprintf(value, cap, "%s", lib);
  if (old != NULL) {
    copy = strdup(old);
    if (copy == NULL) {
      free(value);
      return -ENOMEM;
    }
    char *save = NULL;
    for (char *it = strtok_r(copy, " :", &save); it != NULL; it = strtok_r(NULL, " :", &save)) {
      if (strcmp(it, lib) == 0)
        continue;
      used += (size_t)snprintf(value + used, cap - used, ":%s", it);
    }
  }
  int r = setenv("LD_PRELOAD", value, 1) < 0 ? -errno : 0;
  free(copy);
  free(value);
  return r;
}

/* ------------------------------------------------------------- container */

/* Creates the container directory under containers_dir: with the given
 * name, or a generated run-<pid>-<hex> one. Writes its path and id.
 * Returns 0 or -1 after printing why not. */
static int vgp__run_make_dir(const char *containers_dir, const char *name, char *dir,
                             size_t dirlen, char *id, size_t idlen) {
  for (int attempt = 0; attempt < 16; attempt++) {
    if (name != NULL) {
      vgp__strlcpy(id, name, idlen);
    } else {
      uint32_t rnd;
      if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)(vgp__now_ns() ^ ((uint64_t)getpid() << 16)) + (uint32_t)attempt;
      snprintf(id, idlen, "run-%d-%08x", (int)getpid(), rnd);
    }
    int n = snprintf(dir, dirlen, "%s/%s", containers_dir, id);
    if (n < 0 || (size_t)n >= dirlen) {
      fprintf(stderr, "vgpool run: container path %s/%s is too long\n", containers_dir, id);
      return -1;
    }
    if (mkdir(dir, 0755) == 0)
      return 0;
    if (errno != EEXIST || name != NULL) {
      if (errno == EEXIST)
        fprintf(stderr,
                "vgpool run: container '%s' already exists (%s); choose another --name, or "
                "remove the directory if nothing uses it\n", id, dir);
      else
        fprintf(stderr, "vgpool run: cannot create %s: %s\n", dir, strerror(errno));
      return -1;
    }
  }
  fprintf(stderr, "vgpool run: cannot find a free container id under %s\n", containers_dir);
  return -1;
}

/* Counts the container's processes that are still alive after CMD ended
 * (daemons it left behind), returning the slots of dead ones first. */
static int vgp__run_live_processes(const char *region_path) {
  struct vgp__region h;
  char err[VGP__RUN_ERR_MAX];
  if (vgp__region_open(&h, region_path, 1, err, sizeof(err)) < 0)
    return 0;
  vgp__region_reclaim(&h);
  int live = 0;
  for (int s = 0; s < VGP_REGION_MAX_PROCS; s++)
    if (__atomic_load_n(&h.r->slots[s].state, __ATOMIC_ACQUIRE) != VGP_REGION_SLOT_FREE &&
        vgp__region_slot_alive(&h, s))
      live++;
  vgp__region_close(&h);
  return live;
}

/* ------------------------------------------------------------- child */

/* The signals vgpool passes on to CMD. */
static const int vgp__run_forward[] = {SIGINT, SIGTERM, SIGHUP};

/* Starts CMD and waits for it, forwarding signals. Returns the exit status
 * vgpool should exit with. Signals are blocked first and taken with
 * sigwaitinfo, so none can arrive between fork and the wait and be lost,
 * and no handler runs at an awkward moment. */
static int vgp__run_child(char **cmd) {
  sigset_t set, old;
  sigemptyset(&set);
  for (size_t i = 0; i < sizeof(vgp__run_forward) / sizeof(vgp__run_forward[0]); i++)
    sigaddset(&set, vgp__run_forward[i]);
  sigaddset(&set, SIGCHLD);
  /* An inherited SIG_IGN for SIGCHLD would make the kernel reap CMD
   * behind our back and lose its status. */
  signal(SIGCHLD, SIG_DFL);
  sigprocmask(SIG_BLOCK, &set, &old);

  /* A close-on-exec pipe tells the parent whether execvp worked: it is
   * closed by a successful exec and carries errno otherwise, so "CMD not
   * found" is never confused with CMD exiting 127 itself. */
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) {
    fprintf(stderr, "vgpool run: pipe: %s\n", strerror(errno));
    return VGP_EXIT_FAILURE;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "vgpool run: fork: %s\n", strerror(errno));
    close(pfd[0]);
    close(pfd[1]);
    return VGP_EXIT_FAILURE;
  }
  if (pid == 0) {
    close(pfd[0]);
    sigprocmask(SIG_SETMASK, &old, NULL);
    execvp(cmd[0], cmd);
    int e = errno;
    ssize_t w = write(pfd[1], &e, sizeof(e));
    (void)w;
    _exit(127);
  }
  close(pfd[1]);
  int exec_errno = 0;
  ssize_t n;
  do
    n = read(pfd[0], &exec_errno, sizeof(exec_errno));
  while (n < 0 && errno == EINTR);
  close(pfd[0]);
  if (n == (ssize_t)sizeof(exec_errno)) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    fprintf(stderr, "vgpool run: cannot run '%s': %s\n", cmd[0], strerror(exec_errno));
    return 127;
  }

  int status = 0;
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    if (sig < 0)
      continue; /* EINTR from a signal outside the set (e.g. SIGCONT) */
    if (sig == SIGCHLD) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid)
        break;
      continue;
    }
    /* A signal the terminal sent (Ctrl-C, hangup) went to the whole
     * foreground process group, CMD included; sending it again would make
     * CMD see it twice. Anything else (kill from a user, a supervisor) is
     * meant for the container and is passed on. */
    if (si.si_code == SI_KERNEL && getpgid(pid) == getpgrp())
      continue;
    kill(pid, sig);
  }
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return VGP_EXIT_FAILURE;
}

/* ------------------------------------------------------------- main */

int vgp_cmd_run(int argc, char **argv) {
  struct vgp__run_opts o;
  struct vgp_nvml *nvml = NULL;
  char err[VGP__RUN_ERR_MAX];
  char lib[PATH_MAX], containers[VGP_CLI_PATH_MAX], dir[VGP_CLI_PATH_MAX];
  char limits_path[VGP_CLI_PATH_MAX + 16], region_path[VGP_CLI_PATH_MAX + 16];
  char id[VGP_CONTAINER_ID_MAX];
  int r;

  r = vgp__run_parse(argc, argv, &o);
  if (r != 0)
    return r > 0 ? VGP_EXIT_OK : VGP_EXIT_USAGE;

  /* The node's devices, as the driver names them. The view is large, so it
   * lives on the heap rather than the stack. */
  struct vgp_nvml_view *view = calloc(1, sizeof(*view));
  struct vgp_limits *limits = calloc(1, sizeof(*limits));
  if (view == NULL || limits == NULL) {
    fprintf(stderr, "vgpool run: out of memory\n");
    r = VGP_EXIT_FAILURE;
    goto out;
  }
  if (vgp_nvml_open(&nvml, err, sizeof(err)) < 0 ||
      vgp_nvml_snapshot(nvml, view, err, sizeof(err)) < 0) {
    fprintf(stderr, "vgpool run: %s\n", err);
    r = VGP_EXIT_FAILURE;
    goto out;
  }
  /* NVML is not needed any more, and CMD should not inherit a process
   * that holds the driver open for no reason. */
  vgp_nvml_close(nvml);
  nvml = NULL;

  if (view->count == 0) {
    fprintf(stderr, "vgpool run: NVML reports no GPU on this node\n");
    r = VGP_EXIT_FAILURE;
    goto out;
  }
  limits->priority = o.priority;
  limits->oversubscribe = o.oversubscribe;
  if (vgp__run_devices(&o, view, limits) < 0) {
    r = VGP_EXIT_USAGE;
    goto out;
  }
  if (vgp__run_find_lib(o.lib, lib, sizeof(lib)) < 0) {
    r = VGP_EXIT_FAILURE;
    goto out;
  }

  r = vgp_containers_dir(containers, sizeof(containers), 1);
  if (r < 0) {
    fprintf(stderr, "vgpool run: cannot create the node directory (VGPOOL_ROOT): %s\n",
            strerror(-r));
    r = VGP_EXIT_FAILURE;
    goto out;
  }
  if (vgp__run_make_dir(containers, o.name, dir, sizeof(dir), id, sizeof(id)) < 0) {
    r = VGP_EXIT_FAILURE;
    goto out;
  }
  vgp__strlcpy(limits->container, id, sizeof(limits->container));
  snprintf(limits_path, sizeof(limits_path), "%s/%s", dir, VGP_LIMITS_NAME);
  snprintf(region_path, sizeof(region_path), "%s/%s", dir, VGP_REGION_NAME);
  /* Limits first, then the region: the library refuses CUDA without a
   * limits file, so a region never exists without the limits it copies. */
  if ((r = vgp_limits_save(limits_path, limits)) < 0) {
    fprintf(stderr, "vgpool run: cannot write %s: %s\n", limits_path, strerror(-r));
    vgp_container_remove(dir);
    r = VGP_EXIT_FAILURE;
    goto out;
  }
  if ((r = vgp__region_create(region_path, limits)) < 0) {
    fprintf(stderr, "vgpool run: cannot create %s: %s\n", region_path, vgp__shm_strerror(r));
    vgp_container_remove(dir);
    r = VGP_EXIT_FAILURE;
    goto out;
  }

  /* The child's environment: exactly three variables change. */
  char visible[VGP_MAX_DEVICES * VGP_UUID_MAX + 1];
  size_t used = 0;
  visible[0] = '\0';
  for (unsigned k = 0; k < limits->ndevices; k++)
    used += (size_t)snprintf(visible + used, sizeof(visible) - used, "%s%s", k ? "," : "",
                             limits->dev[k].uuid);
  if ((r = vgp__run_set_preload(lib)) < 0 || setenv("VGPOOL_CONTAINER_DIR", dir, 1) < 0 ||
      setenv("CUDA_VISIBLE_DEVICES", visible, 1) < 0) {
    fprintf(stderr, "vgpool run: cannot set the environment: %s\n",
            strerror(r < 0 ? -r : errno));
    vgp_container_remove(dir);
    r = VGP_EXIT_FAILURE;
    goto out;
  }

  r = vgp__run_child(o.cmd);

  if (o.keep) {
    fprintf(stderr, "vgpool run: kept container '%s' in %s\n", id, dir);
  } else {
    int live = vgp__run_live_processes(region_path);
    if (live > 0)
      fprintf(stderr,
              "vgpool run: warning: %d process%s of container '%s' still running after "
              "'%s' ended; they keep their limits but are no longer shown by vgpool top\n",
              live, live == 1 ? "" : "es", id, o.cmd[0]);
    int rr = vgp_container_remove(dir);
    if (rr < 0)
      fprintf(stderr, "vgpool run: warning: cannot remove %s: %s\n", dir, strerror(-rr));
  }
out:
  vgp_nvml_close(nvml);
  free(limits);
  free(view);
  return r;
}
