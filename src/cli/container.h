/*
 * container.h - the container directories under the node root, as the CLI
 * sees them.
 *
 * `vgpool run` creates <root>/containers/<id>/ with its limits and region
 * files and removes it when its command ends; `vgpool top` lists what is
 * there. Both name containers and build paths through these helpers, so a
 * container id means the same thing to both and can never escape the
 * containers directory.
 */
#ifndef VGP_CLI_CONTAINER_H
#define VGP_CLI_CONTAINER_H

#include <stddef.h>

#include "vgpool/limits.h"

/* Paths under the root are built into buffers of this size. */
#define VGP_CLI_PATH_MAX 4096

/* The most containers `vgpool top` lists on one screen. A node runs tens,
 * at most hundreds; the cap keeps memory bounded if a directory fills with
 * junk. */
#define VGP_CONTAINER_LIST_MAX 4096

/* 1 if id is a usable container id: 1..VGP_CONTAINER_ID_MAX-1 characters
 * of [A-Za-z0-9._-], and not "." or "..". */
int vgp_container_id_valid(const char *id);

/* Writes <root>/containers into buf; with `create`, makes the root and the
 * containers directory (mode 0755) when missing. Returns 0 or -errno. */
int vgp_containers_dir(char *buf, size_t len, int create);

/* Removes a container directory: every entry in it that is not a
 * directory (limits, region, temporary files left by a crash), then the
 * directory itself. Returns 0, or the first -errno met (it keeps going, so
 * as much as possible is removed). */
int vgp_container_remove(const char *dir);

/* Lists the container ids under containers_dir, sorted by name, into a
 * newly allocated array of *ret_count names (free it with free()). Entries
 * that are not directories or whose names are not valid ids are skipped.
 * A missing containers_dir is an empty list. At most VGP_CONTAINER_LIST_MAX
 * are returned; *ret_truncated says whether there were more. */
int vgp_container_list(const char *containers_dir, char (**ret_ids)[VGP_CONTAINER_ID_MAX],
                       size_t *ret_count, int *ret_truncated);

#endif
