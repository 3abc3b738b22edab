/*
 * test_sim_cli.c - `vgpool sim` shows the node as NVML sees it, resets it
 * only when that is safe, prints a working environment, and names what is
 * wrong with bad input.
 *
 * Runs the built vgpool binary. Helper processes hold memory and contexts
 * on the node through node.h, as CUDA applications under the simulated
 * libcuda would.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node.h"
#include "vgp_test.h"

#define MiB (1ull << 20)

static char out_buf[65536], err_buf[65536];

/* Runs the built `vgpool` with the given arguments (NULL-terminated);
 * stdout and stderr land in out_buf and err_buf. Returns the exit status. */
static int vgpool(const char *arg, ...) {
  char exe[PATH_MAX], out[PATH_MAX], err[PATH_MAX];
  char *argv[16];
  int n = 0;
  va_list ap;
  snprintf(exe, sizeof(exe), "%s/src/cli/vgpool", vgp_test_build_dir());
  snprintf(out, sizeof(out), "%s/stdout", vgp_test_tmpdir());
  snprintf(err, sizeof(err), "%s/stderr", vgp_test_tmpdir());
  argv[n++] = exe;
  va_start(ap, arg);
  for (const char *a = arg; a != NULL && n < 15; a = va_arg(ap, const char *))
    argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0)
      _exit(126);
    dup2(fo, 1);
    dup2(fe, 2);
    execv(exe, argv);
    _exit(127);
  }
  int status = vgp_test_wait(pid);
  vgp_test_read_file(out, out_buf, sizeof(out_buf));
  vgp_test_read_file(err, err_buf, sizeof(err_buf));
  if (status == 127)
    vgp_test_fail(__FILE__, __LINE__, "cannot run %s", exe);
  return status;
}

static void use_node(const char *spec, char *state, size_t len) {
  snprintf(state, len, "%s/node.state", vgp_test_tmpdir());
  setenv("VGPOOL_SIM_STATE", state, 1);
  setenv("VGPOOL_SIM_DEVICES", spec, 1);
  unsetenv("VGPOOL_SIM_CONFIG");
  setenv("VGPOOL_LOG", "off", 1);
}

/* A CUDA process: claims a slot, charges MiB on dev with one context. */
VGP_HELPER(hold) {
  struct vgp_sim_handle h;
  char err[512];
  int slot;
  if (argc != 2 || vgp_sim_open(&h, err, sizeof(err)) < 0 ||
      vgp_sim_slot_claim(&h, &slot) < 0)
    return 2;
  int dev = atoi(argv[0]);
  if (vgp_sim_mem_charge(&h, slot, dev, strtoull(argv[1], NULL, 10) * MiB) < 0)
    return 3;
  __atomic_add_fetch(&h.node->slots[slot].dev[dev].contexts, 1, __ATOMIC_ACQ_REL);
  for (;;)
    pause();
}

static int attached(pid_t pid) {
  struct vgp_sim_handle h;
  char err[512];
  if (vgp_sim_open_existing(&h, 0, err, sizeof(err)) < 0)
    return 0;
  int found = 0;
  for (int i = 0; i < VGP_SIM_MAX_PROCS; i++)
    if (h.node->slots[i].state == VGP_SIM_SLOT_ACTIVE && h.node->slots[i].pid == pid &&
        h.node->slots[i].dev[0].contexts > 0)
      found = 1;
  vgp_sim_close(&h);
  return found;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  fputs(text, f);
  ASSERT_OK(fclose(f));
}

VGP_TEST(show_reports_devices_memory_and_processes) {
  char state[1024], pid_text[32], uuid[64];
  use_node("2xH100-80GB,1xT4", state, sizeof(state));
  /* No node yet: show creates it from the environment. */
  ASSERT_EQ_INT(access(state, F_OK), -1);
  ASSERT_EQ_INT(vgpool("sim", NULL), 0);
  ASSERT_EQ_INT(access(state, F_OK), 0);
  ASSERT_CONTAINS(out_buf, "No running processes found");

  pid_t pid = vgp_test_spawn("hold", "0", "1024", NULL);
  VGP_WAIT_UNTIL(attached(pid), 20000);
  struct vgp_sim_handle h;
  char err[512];
  ASSERT_OK(vgp_sim_open_existing(&h, 0, err, sizeof(err)));
  snprintf(uuid, sizeof(uuid), "%s", h.node->cfg[0].uuid);
  vgp_sim_close(&h);
  snprintf(pid_text, sizeof(pid_text), " %d ", (int)pid);

  ASSERT_EQ_INT(vgpool("sim", "show", NULL), 0);
  ASSERT_EQ_STR(err_buf, "");
  ASSERT_CONTAINS(out_buf, "Driver Version: 580.65.06");
  ASSERT_CONTAINS(out_buf, "CUDA Version: 13.0");
  ASSERT_CONTAINS(out_buf, "NVIDIA H100 80GB HBM3");
  ASSERT_CONTAINS(out_buf, "Tesla T4");
  ASSERT_CONTAINS(out_buf, "00000000:3B:00.0");
  ASSERT_CONTAINS(out_buf, uuid);
  ASSERT_CONTAINS(out_buf, "1024MiB /   81559MiB");
  ASSERT_CONTAINS(out_buf, "0MiB /   15360MiB");
  ASSERT_CONTAINS(out_buf, pid_text);
  ASSERT_CONTAINS(out_buf, "test_sim_cli");

  char want[128];
  ASSERT_EQ_INT(vgpool("sim", "--json", NULL), 0);
  ASSERT_EQ_INT(out_buf[0], '{');
  ASSERT_CONTAINS(out_buf, "\"driver_version\": \"580.65.06\"");
  ASSERT_CONTAINS(out_buf, "\"name\": \"Tesla T4\"");
  ASSERT_CONTAINS(out_buf, "\"memory_total\": 85520809984, \"memory_used\": 1073741824");
  snprintf(want, sizeof(want), "{\"device\": 0, \"pid\": %d, \"name\": \"test_sim_cli\", "
           "\"memory_used\": 1073741824}", (int)pid);
  ASSERT_CONTAINS(out_buf, want);

  /* Killed, it is gone from the display and its slot is given back. */
  kill(pid, SIGKILL);
  vgp_test_wait(pid);
  ASSERT_EQ_INT(vgpool("sim", NULL), 0);
  ASSERT_CONTAINS(out_buf, "No running processes found");
  ASSERT_CONTAINS(out_buf, "   0MiB /   81559MiB");
  ASSERT_OK(vgp_sim_open_existing(&h, 0, err, sizeof(err)));
  ASSERT_EQ_U64(h.node->dev[0].used_bytes, 0);
  vgp_sim_close(&h);
}

VGP_TEST(bad_input_is_named_and_fails) {
  char state[1024], conf[1024];
  use_node("2xH100-80G", state, sizeof(state));
  ASSERT_EQ_INT(vgpool("sim", NULL), 1);
  ASSERT_CONTAINS(err_buf, "\"H100-80G\"");
  ASSERT_EQ_STR(out_buf, "");
  ASSERT_EQ_INT(access(state, F_OK), -1);

  snprintf(conf, sizeof(conf), "%s/node.conf", vgp_test_tmpdir());
  write_file(conf, "[device]\nmodel = T4\nnuma_node = seven\n");
  setenv("VGPOOL_SIM_CONFIG", conf, 1);
  ASSERT_EQ_INT(vgpool("sim", "show", NULL), 1);
  ASSERT_CONTAINS(err_buf, "node.conf:3");
  ASSERT_CONTAINS(err_buf, "\"seven\"");
  unsetenv("VGPOOL_SIM_CONFIG");

  setenv("VGPOOL_SIM_DEVICES", "1xT4", 1);
  write_file(state, "this is not a node\n");
  ASSERT_EQ_INT(vgpool("sim", NULL), 1);
  ASSERT_CONTAINS(err_buf, state);
  ASSERT_CONTAINS(err_buf, "vgpool sim reset");

  ASSERT_EQ_INT(vgpool("sim", "bogus", NULL), 2);
  ASSERT_CONTAINS(err_buf, "'bogus'");
  ASSERT_EQ_INT(vgpool("sim", "--bogus", NULL), 2);
  ASSERT_CONTAINS(err_buf, "'--bogus'");
  ASSERT_EQ_INT(vgpool("sim", "show", "--force", NULL), 2);
  ASSERT_EQ_INT(vgpool("sim", "reset", "--json", NULL), 2);
  ASSERT_EQ_INT(vgpool("sim", "show", "extra", NULL), 2);
  ASSERT_EQ_INT(vgpool("sim", "--help", NULL), 0);
  ASSERT_CONTAINS(out_buf, "vgpool sim reset");
}

static ino_t inode_of(const char *path) {
  struct stat st;
  ASSERT_OK(stat(path, &st));
  return st.st_ino;
}

VGP_TEST(reset_refuses_while_processes_are_attached) {
  char state[1024], pid_text[32];
  use_node("1xH100-80GB", state, sizeof(state));
  ASSERT_EQ_INT(vgpool("sim", NULL), 0);
  pid_t pid = vgp_test_spawn("hold", "0", "256", NULL);
  VGP_WAIT_UNTIL(attached(pid), 20000);
  ino_t before = inode_of(state);

  ASSERT_EQ_INT(vgpool("sim", "reset", NULL), 1);
  snprintf(pid_text, sizeof(pid_text), "%d (test_sim_cli)", (int)pid);
  ASSERT_CONTAINS(err_buf, pid_text);
  ASSERT_CONTAINS(err_buf, "--force");
  ASSERT_EQ_U64(inode_of(state), before);
  ASSERT_TRUE(attached(pid));

  /* A malformed spec stops reset before it touches anything. */
  setenv("VGPOOL_SIM_DEVICES", "1xNOPE", 1);
  ASSERT_EQ_INT(vgpool("sim", "reset", "--force", NULL), 1);
  ASSERT_CONTAINS(err_buf, "\"NOPE\"");
  ASSERT_EQ_U64(inode_of(state), before);
  setenv("VGPOOL_SIM_DEVICES", "1xH100-80GB", 1);

  ASSERT_EQ_INT(vgpool("sim", "reset", "--force", NULL), 0);
  ASSERT_CONTAINS(out_buf, "reset simulated node");
  ASSERT_TRUE(inode_of(state) != before);
  ASSERT_FALSE(attached(pid));
  kill(pid, SIGKILL);
  vgp_test_wait(pid);

  /* With nobody attached, reset needs no force; it also takes a new
   * device spec. */
  setenv("VGPOOL_SIM_DEVICES", "3xT4", 1);
  ASSERT_EQ_INT(vgpool("sim", "reset", NULL), 0);
  ASSERT_CONTAINS(out_buf, "3 devices (3xT4)");
  ASSERT_EQ_INT(vgpool("sim", NULL), 0);
  ASSERT_CONTAINS(out_buf, "Tesla T4");
}

VGP_TEST(reset_repairs_bad_state_files) {
  char state[1024];
  use_node("1xT4", state, sizeof(state));

  /* A node file from another vgpool version is replaced. */
  struct vgp__shm_header hdr;
  memset(&hdr, 0, sizeof(hdr));
  hdr.magic = VGP_SIM_MAGIC;
  hdr.version = VGP_SIM_VERSION + 7;
  hdr.header_size = sizeof(hdr);
  hdr.total_size = 4096;
  int fd = open(state, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_TRUE(fd >= 0);
  ASSERT_EQ_INT(write(fd, &hdr, sizeof(hdr)), (long long)sizeof(hdr));
  close(fd);
  ASSERT_EQ_INT(vgpool("sim", NULL), 1);
  ASSERT_CONTAINS(err_buf, "another version of vgpool");
  ASSERT_EQ_INT(vgpool("sim", "reset", NULL), 0);
  ASSERT_EQ_INT(vgpool("sim", NULL), 0);

  /* A file that is not ours is only removed when forced. */
  write_file(state, "precious data that is not a node\n");
  ASSERT_EQ_INT(vgpool("sim", "reset", NULL), 1);
  ASSERT_CONTAINS(err_buf, "not a vgpool node state file");
  vgp_test_read_file(state, out_buf, sizeof(out_buf));
  ASSERT_CONTAINS(out_buf, "precious data");
  ASSERT_EQ_INT(vgpool("sim", "reset", "--force", NULL), 0);
  ASSERT_EQ_INT(vgpool("sim", "--json", NULL), 0);
  ASSERT_CONTAINS(out_buf, "\"spec\": \"1xT4\"");
}

VGP_TEST(env_selects_the_simulated_driver) {
  char dir[PATH_MAX], want[PATH_MAX + 64], sim[PATH_MAX];
  snprintf(sim, sizeof(sim), "%s/src/sim", vgp_test_build_dir());
  ASSERT_NOT_NULL(realpath(sim, dir));
  ASSERT_EQ_INT(vgpool("sim", "env", NULL), 0);
  snprintf(want, sizeof(want), "export LD_LIBRARY_PATH='%s'", dir);
  ASSERT_CONTAINS(out_buf, want);

  /* The lines work in a shell: the library directory comes first. */
  char script[PATH_MAX * 2];
  snprintf(script, sizeof(script), "%s/env.sh", vgp_test_tmpdir());
  FILE *f = fopen(script, "w");
  ASSERT_NOT_NULL(f);
  fprintf(f, "%s", out_buf);
  fprintf(f, "printf '%%s' \"$LD_LIBRARY_PATH\" > '%s/ld'\n", vgp_test_tmpdir());
  ASSERT_OK(fclose(f));
  setenv("LD_LIBRARY_PATH", "/somewhere/else", 1);
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", script, (char *)NULL);
    _exit(127);
  }
  ASSERT_EQ_INT(vgp_test_wait(pid), 0);
  char ld[PATH_MAX * 2];
  snprintf(script, sizeof(script), "%s/ld", vgp_test_tmpdir());
  vgp_test_read_file(script, ld, sizeof(ld));
  snprintf(want, sizeof(want), "%s:/somewhere/else", dir);
  ASSERT_EQ_STR(ld, want);
  snprintf(want, sizeof(want), "%s/libnvidia-ml.so.1", dir);
  ASSERT_EQ_INT(access(want, R_OK), 0);
}
