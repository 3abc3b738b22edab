/*
 * log.h - diagnostics for code that runs inside other people's processes.
 *
 * libvgpool.so and the simulated driver live inside applications, so they
 * stay silent unless asked: VGPOOL_LOG=error|warn|info|debug sets the level
 * (the default is "error", which is reserved for refusals the user must
 * see, such as an unreadable limits file). VGPOOL_LOG_FILE redirects the
 * output from stderr to a file. Messages are single lines, written with one
 * write() call so lines from several threads never interleave.
 */
#ifndef VGP_COMMON_LOG_H
#define VGP_COMMON_LOG_H

enum vgp__log_level {
  VGP_LOG_OFF = 0,
  VGP_LOG_ERROR = 1,
  VGP_LOG_WARN = 2,
  VGP_LOG_INFO = 3,
  VGP_LOG_DEBUG = 4,
};

/* Returns the level configured by VGPOOL_LOG (read once). */
int vgp__log_level(void);

/* Overrides the level (the CLI uses this for --verbose). */
void vgp__log_set_level(int level);

void vgp__log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define vgp__log_error(comp, ...) vgp__log(VGP_LOG_ERROR, comp, __VA_ARGS__)
#define vgp__log_warn(comp, ...) vgp__log(VGP_LOG_WARN, comp, __VA_ARGS__)
#define vgp__log_info(comp, ...) vgp__log(VGP_LOG_INFO, comp, __VA_ARGS__)
#define vgp__log_debug(comp, ...) vgp__log(VGP_LOG_DEBUG, comp, __VA_ARGS__)

#endif
