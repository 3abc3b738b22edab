/*
 * hashmap.h - an open-addressing map from 64-bit keys to small fixed values.
 *
 * Allocation records (device pointer -> size charged, VMM handle -> size,
 * stream/event handles) are looked up on every free; HAMi-core walks linked
 * lists there. This map is O(1): linear probing over a power-of-two table
 * with a control byte per entry, grown at 70% load. It does no locking;
 * callers serialize access.
 */
#ifndef VGP_COMMON_HASHMAP_H
#define VGP_COMMON_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

struct vgp__hmap {
  uint8_t *ctrl;       /* 0 empty, 1 full, 2 deleted */
  uint64_t *keys;
  unsigned char *vals;
  size_t value_size;
  size_t capacity;     /* power of two, or 0 before the first insert */
  size_t count;
  size_t deleted;
};

/* Prepares an empty map for values of value_size bytes; allocates nothing. */
void vgp__hmap_init(struct vgp__hmap *map, size_t value_size);

/* Frees the table; the map is empty and usable again afterwards. */
void vgp__hmap_clear(struct vgp__hmap *map);

/* Inserts or replaces key. Returns 0 or -ENOMEM (the map is unchanged). */
int vgp__hmap_put(struct vgp__hmap *map, uint64_t key, const void *value);

/* Returns a pointer to the value of key, valid until the next put/remove,
 * or NULL. */
void *vgp__hmap_get(const struct vgp__hmap *map, uint64_t key);

/* Removes key, copying its value to ret_value when not NULL. Returns 0 or
 * -ENOENT. */
int vgp__hmap_remove(struct vgp__hmap *map, uint64_t key, void *ret_value);

/* Iterates: start with *cursor = 0; returns 1 and fills key/value while
 * entries remain, 0 at the end. The map must not change meanwhile. */
int vgp__hmap_next(const struct vgp__hmap *map, size_t *cursor,
                   uint64_t *ret_key, void **ret_value);

#endif
