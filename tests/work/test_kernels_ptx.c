/*
 * test_kernels_ptx.c - src/work/kernels.ptx is valid PTX for real GPUs.
 *
 * The simulator only reads the .entry declarations of a PTX module, so a
 * typo in a kernel body would pass every simulated test and fail on the
 * first real GPU. NVIDIA's assembler, ptxas, checks the whole module; where
 * a CUDA toolkit is installed these tests assemble kernels.ptx for Ampere
 * (sm_80) and Hopper (sm_90) with warnings as errors. Without a toolkit
 * they are skipped with the reason. VGPOOL_PTXAS overrides the assembler's
 * path (the default is <toolkit_dir>/bin/ptxas from the meson option).
 *
 * The file also checks that the kernels declare exactly the parameter lists
 * the simulator gives meaning to, since a mismatch there would silently turn
 * a kernel into an opaque one on the simulator.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vgp_test.h"
#include "work_run.h"

#ifndef VGP_TOOLKIT_DIR
#define VGP_TOOLKIT_DIR "/usr/local/cuda"
#endif

static void ptx_path(char *buf, size_t len) {
  const char *src = getenv("VGPOOL_SOURCE_DIR");
  snprintf(buf, len, "%s/src/work/kernels.ptx", src ? src : "..");
  if (access(buf, R_OK) != 0)
    vgp_test_fail(__FILE__, __LINE__, "cannot read %s (is VGPOOL_SOURCE_DIR set?)", buf);
}

static void assemble_for(const char *arch) {
  char ptxas[512], ptx[512], cubin[512], log[512], text[8192];
  const char *env = getenv("VGPOOL_PTXAS");
  snprintf(ptxas, sizeof(ptxas), "%s", env != NULL ? env : VGP_TOOLKIT_DIR "/bin/ptxas");
  if (access(ptxas, X_OK) != 0) {
    char why[700];
    snprintf(why, sizeof(why), "no CUDA toolkit: %s not found (set VGPOOL_PTXAS)", ptxas);
    vgp_test_skip(why);
  }
  ptx_path(ptx, sizeof(ptx));
  snprintf(cubin, sizeof(cubin), "%s/kernels.%s.cubin", vgp_test_tmpdir(), arch);
  snprintf(log, sizeof(log), "%s/ptxas.%s.log", vgp_test_tmpdir(), arch);

  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT_TRUE(pid >= 0);
  if (pid == 0) {
    if (freopen(log, "w", stdout) == NULL || dup2(1, 2) < 0)
      _exit(126);
    execl(ptxas, ptxas, "--warning-as-error", "-arch", arch, "-o", cubin, ptx, (char *)NULL);
    _exit(127);
  }
  int status = vgp_test_wait(pid);
  vgp_test_read_file(log, text, sizeof(text));
  if (status != 0)
    vgp_test_fail(__FILE__, __LINE__, "ptxas -arch %s failed (%d): %s", arch, status, text);
  struct stat st;
  ASSERT_OK(stat(cubin, &st));
  ASSERT_GT_INT(st.st_size, 0);
}

VGP_TEST(ptxas_accepts_kernels_for_sm_80) { assemble_for("sm_80"); }

VGP_TEST(ptxas_accepts_kernels_for_sm_90) { assemble_for("sm_90"); }

/* Copies the parameter list of ".entry name(...)" into buf, or fails. */
static void entry_params(const char *ptx, const char *name, char *buf, size_t len) {
  char pat[128];
  snprintf(pat, sizeof(pat), ".entry %s(", name);
  const char *p = strstr(ptx, pat);
  if (p == NULL)
    vgp_test_fail(__FILE__, __LINE__, "kernels.ptx has no %s", pat);
  p += strlen(pat);
  const char *end = strchr(p, ')');
  if (end == NULL || (size_t)(end - p) >= len)
    vgp_test_fail(__FILE__, __LINE__, "unterminated parameter list of %s", name);
  memcpy(buf, p, (size_t)(end - p));
  buf[end - p] = '\0';
}

VGP_TEST(entries_have_the_simulator_signatures) {
  static char text[65536];
  char ptx[512], params[512];
  static const struct {
    const char *name, *types[5];
  } want[] = {
    {"vgpool_spin", {".u64", NULL}},
    {"vgpool_fill_u32", {".u64", ".u32", ".u64", NULL}},
    {"vgpool_copy", {".u64", ".u64", ".u64", NULL}},
    {"vgpool_axpy_f32", {".u64", ".f32", ".u64", ".u64", NULL}},
    {"vgpool_sum_u32", {".u64", ".u64", ".u64", NULL}},
  };
  ptx_path(ptx, sizeof(ptx));
  vgp_test_read_file(ptx, text, sizeof(text));
  ASSERT_CONTAINS(text, "\n.version 7.0\n");
  ASSERT_CONTAINS(text, "\n.target sm_70\n");
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    entry_params(text, want[i].name, params, sizeof(params));
    int j = 0;
    for (char *save = NULL, *piece = strtok_r(params, ",", &save); piece != NULL;
         piece = strtok_r(NULL, ",", &save), j++) {
      char kw[16], type[16], pname[64];
      ASSERT_EQ_INT(sscanf(piece, "%15s %15s %63s", kw, type, pname), 3);
      ASSERT_EQ_STR(kw, ".param");
      ASSERT_NOT_NULL(want[i].types[j]);
      ASSERT_EQ_STR(type, want[i].types[j]);
    }
    ASSERT_NULL(want[i].types[j]);
  }
}
