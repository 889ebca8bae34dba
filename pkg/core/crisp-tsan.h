/* Annotations for ThreadSanitizer builds (--enable-sanitizers=thread). GLib and gRPC are not
 * instrumented and lock with futexes of their own, so TSan cannot see how crisp's threads
 * hand work to each other: these name the hand-over points. Empty in every other build. */
#pragma once

#if defined(__SANITIZE_THREAD__)
void __tsan_acquire (void *addr);
void __tsan_release (void *addr);
#define CRISP_TSAN_ACQUIRE(p) __tsan_acquire ((void *) (p))
#define CRISP_TSAN_RELEASE(p) __tsan_release ((void *) (p))
#else
#define CRISP_TSAN_ACQUIRE(p) ((void) 0)
#define CRISP_TSAN_RELEASE(p) ((void) 0)
#endif
