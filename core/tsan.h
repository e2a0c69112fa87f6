/*
 * tsan.h - happens-before annotations for ThreadSanitizer, and nothing else.
 *
 * liburcu is not built with TSan, so TSan cannot see the edges its queues
 * and hash tables provide: an object filled by one thread, handed through a
 * wfcqueue (or published in an rculfhash) and read by another looks like a
 * data race.  The code states each such edge once, at the hand-over:
 * tsan_release(obj) just before the enqueue / publication, tsan_acquire(obj)
 * just after the dequeue / lookup.  Without TSan both compile to nothing.
 * Grace periods (a call_rcu free after readers are done) are not stated this
 * way; tests/rib/tsan.supp covers them with suppressions limited to liburcu.
 */
#ifndef RICOCHET_TSAN_H
#define RICOCHET_TSAN_H

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RICOCHET_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define RICOCHET_TSAN 1
#endif

#ifdef RICOCHET_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define tsan_acquire(p) __tsan_acquire((void *)(p))
#define tsan_release(p) __tsan_release((void *)(p))
#else
#define tsan_acquire(p) ((void)(p))
#define tsan_release(p) ((void)(p))
#endif

#endif
