/* Annotations for ThreadSanitizer builds (--enable-sanitizers=thread). GLib and gRPC are not
 * instrumented and lock with futexes of their own, so TSan cannot see how crisp's threads
 * hand work to each other: these name the hand-over points. Empty in every other build. */
#pragma once

#if defined(__SANITIZE_THREAD__)
void __tsan_acquire (void *addr);
void __tsan_release (void *addr);
void __tsan_ignore_thread_begin (void);
void __tsan_ignore_thread_end (void);
#define CRISP_TSAN_ACQUIRE(p) __tsan_acquire ((void *) (p))
#define CRISP_TSAN_RELEASE(p) __tsan_release ((void *) (p))
/* Around a library call that only moves the library's own memory from this thread to another
 * under a lock TSan cannot see: the calling thread's accesses during the call are not
 * recorded (crisp's objects must not be touched in between). */
#define CRISP_TSAN_IGNORE_BEGIN() __tsan_ignore_thread_begin ()
#define CRISP_TSAN_IGNORE_END() __tsan_ignore_thread_end ()
#else
#define CRISP_TSAN_ACQUIRE(p) ((void) 0)
#define CRISP_TSAN_RELEASE(p) ((void) 0)
#define CRISP_TSAN_IGNORE_BEGIN() ((void) 0)
#define CRISP_TSAN_IGNORE_END() ((void) 0)
#endif
