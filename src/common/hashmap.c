/*
 * hashmap.c - open-addressing u64 map (see hashmap.h).
 */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "hashmap.h"

enum { VGP__EMPTY = 0, VGP__FULL = 1, VGP__DELETED = 2 };

static inline uint64_t vgp__mix(uint64_t key) {
  /* splitmix64 finalizer: pointers have zero low bits and clustered high
   * bits, so they must be scrambled before masking. */
  key ^= key >> 30;
  key *= 0xbf58476d1ce4e5b9ull;
  key ^= key >> 27;
  key *= 0x94d049bb133111ebull;
  key ^= key >> 31;
  return key;
}

void vgp__hmap_init(struct vgp__hmap *map, size_t value_size) {
  memset(map, 0, sizeof(*map));
  map->value_size = value_size;
}

void vgp__hmap_clear(struct vgp__hmap *map) {
  size_t value_size = map->value_size;
  vgp__free(map->ctrl);
  vgp__free(map->keys);
  vgp__free(map->vals);
  vgp__hmap_init(map, value_size);
}

static size_t vgp__find(const struct vgp__hmap *map, uint64_t key) {
  size_t mask = map->capacity - 1;
  size_t i = (size_t)vgp__mix(key) & mask;
  for (size_t probes = 0; probes < map->capacity; probes++, i = (i + 1) & mask) {
    if (map->ctrl[i] == VGP__EMPTY)
      return SIZE_MAX;
    if (map->ctrl[i] == VGP__FULL && map->keys[i] == key)
      return i;
  }
  return SIZE_MAX;
}

static int vgp__rehash(struct vgp__hmap *map, size_t capacity) {
  uint8_t *ctrl = vgp__calloc(capacity, 1);
  uint64_t *keys = vgp__malloc(capacity * sizeof(uint64_t));
  unsigned char *vals = vgp__malloc(capacity * (map->value_size ? map->value_size : 1));
  if (ctrl == NULL || keys == NULL || vals == NULL) {
    vgp__free(ctrl);
    vgp__free(keys);
    vgp__free(vals);
    return -ENOMEM;
  }
  size_t mask = capacity - 1;
  for (size_t j = 0; j < map->capacity; j++) {
    if (map->ctrl[j] != VGP__FULL)
      continue;
    size_t i = (size_t)vgp__mix(map->keys[j]) & mask;
    while (ctrl[i] == VGP__FULL)
      i = (i + 1) & mask;
    ctrl[i] = VGP__FULL;
    keys[i] = map->keys[j];
    memcpy(vals + i * map->value_size, map->vals + j * map->value_size,
           map->value_size);
  }
  vgp__free(map->ctrl);
  vgp__free(map->keys);
  vgp__free(map->vals);
  map->ctrl = ctrl;
  map->keys = keys;
  map->vals = vals;
  map->capacity = capacity;
  map->deleted = 0;
  return 0;
}

int vgp__hmap_put(struct vgp__hmap *map, uint64_t key, const void *value) {
  if (map->capacity > 0) {
    size_t i = vgp__find(map, key);
    if (i != SIZE_MAX) {
      memcpy(map->vals + i * map->value_size, value, map->value_size);
      return 0;
    }
  }
  if ((map->count + map->deleted + 1) * 10 > map->capacity * 7) {
    size_t capacity = map->capacity ? map->capacity : 16;
    while ((map->count + 1) * 10 > capacity * 5)
      capacity *= 2;
    int r = vgp__rehash(map, capacity);
    if (r < 0)
      return r;
  }
  size_t mask = map->capacity - 1;
  size_t i = (size_t)vgp__mix(key) & mask;
  while (map->ctrl[i] == VGP__FULL)
    i = (i + 1) & mask;
  if (map->ctrl[i] == VGP__DELETED)
    map->deleted--;
  map->ctrl[i] = VGP__FULL;
  map->keys[i] = key;
  memcpy(map->vals + i * map->value_size, value, map->value_size);
  map->count++;
  return 0;
}

void *vgp__hmap_get(const struct vgp__hmap *map, uint64_t key) {
  if (map->capacity == 0)
    return NULL;
  size_t i = vgp__find(map, key);
  return i == SIZE_MAX ? NULL : map->vals + i * map->value_size;
}

int vgp__hmap_remove(struct vgp__hmap *map, uint64_t key, void *ret_value) {
  if (map->capacity == 0)
    return -ENOENT;
  size_t i = vgp__find(map, key);
  if (i == SIZE_MAX)
    return -ENOENT;
  if (ret_value != NULL)
    memcpy(ret_value, map->vals + i * map->value_size, map->value_size);
  map->ctrl[i] = VGP__DELETED;
  map->count--;
  map->deleted++;
  return 0;
}

int vgp__hmap_next(const struct vgp__hmap *map, size_t *cursor,
                   uint64_t *ret_key, void **ret_value) {
  for (size_t i = *cursor; i < map->capacity; i++) {
    if (map->ctrl[i] == VGP__FULL) {
      *cursor = i + 1;
      if (ret_key)
        *ret_key = map->keys[i];
      if (ret_value)
        *ret_value = map->vals + i * map->value_size;
      return 1;
    }
  }
  *cursor = map->capacity;
  return 0;
}
