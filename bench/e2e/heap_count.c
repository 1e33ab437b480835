/* heap_count: an LD_PRELOAD counter of live heap blocks by usable size (8-byte classes), for
 * bench/e2e/idle_heap.py. It wraps malloc, calloc, realloc, free and the aligned allocations
 * (Asio allocates its operations with aligned_alloc) and writes its table to the file named by
 * HEAP_COUNT_OUT on SIGUSR2: "usable_size blocks bytes" per line. Counting only, never changes
 * what the program allocates. */
#define _GNU_SOURCE
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define kClasses 4096
static atomic_long live[kClasses];

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static void count(void *p, long d) {
  if (p != NULL) {
    size_t c = malloc_usable_size(p) / 8;
    atomic_fetch_add(&live[c < kClasses - 1 ? c : kClasses - 1], d);
  }
}
void *malloc(size_t n) { void *p = __libc_malloc(n); count(p, 1); return p; }
void free(void *p) { count(p, -1); __libc_free(p); }
void *calloc(size_t a, size_t b) { void *p = __libc_calloc(a, b); count(p, 1); return p; }
void *realloc(void *q, size_t n) {
  count(q, -1);
  void *p = __libc_realloc(q, n);
  count(p != NULL ? p : q, 1);
  return p;
}
void *aligned_alloc(size_t a, size_t n) { void *p = __libc_memalign(a, n); count(p, 1); return p; }
void *memalign(size_t a, size_t n) { void *p = __libc_memalign(a, n); count(p, 1); return p; }
int posix_memalign(void **out, size_t a, size_t n) {
  void *p = __libc_memalign(a, n);
  count(p, 1);
  *out = p;
  return p != NULL ? 0 : 12; /* ENOMEM */
}

static void dump(int sig) {
  (void)sig;
  const char *path = getenv("HEAP_COUNT_OUT");
  FILE *f = fopen(path != NULL ? path : "heap_count.out", "w");
  if (f == NULL) return;
  for (int i = 0; i < kClasses; i++) {
    long n = atomic_load(&live[i]);
    if (n != 0) fprintf(f, "%d %ld %ld\n", i * 8, n, n * (long)(i * 8));
  }
  fclose(f);
}
__attribute__((constructor)) static void init(void) { signal(SIGUSR2, dump); }
