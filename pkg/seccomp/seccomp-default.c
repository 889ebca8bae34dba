/* crisp's RuntimeDefault seccomp profile: an allow-list written as a table here, in the spirit
 * of the defaults other runtimes ship (deny with EPERM what a container has no business calling:
 * kernel modules, kexec, keyrings, namespace games without CAP_SYS_ADMIN, clock setting ...). */
#include "config.h"

#include "crisp-seccomp.h"

#include <string.h>

typedef enum
{
  ARCH_ANY,
  ARCH_X86, /* x86_64, i386, x32 */
  ARCH_ARM, /* aarch64, arm */
} SyscallArch;

typedef struct
{
  const char *name;
  const char *cap; /* NULL: always allowed; else only with this capability */
  SyscallArch arch;
} AllowedSyscall;

/* Every process needs these; names libseccomp does not know are left out when the profile is
 * built, so the table can list calls newer than the installed libseccomp. */
static const AllowedSyscall allowed[] = {
  { "accept" },
  { "accept4" },
  { "access" },
  { "adjtimex" },
  { "alarm" },
  { "bind" },
  { "brk" },
  { "cachestat" },
  { "capget" },
  { "capset" },
  { "chdir" },
  { "chmod" },
  { "chown" },
  { "chown32" },
  { "clock_adjtime" },
  { "clock_adjtime64" },
  { "clock_getres" },
  { "clock_getres_time64" },
  { "clock_gettime" },
  { "clock_gettime64" },
  { "clock_nanosleep" },
  { "clock_nanosleep_time64" },
  { "close" },
  { "close_range" },
  { "connect" },
  { "copy_file_range" },
  { "creat" },
  { "dup" },
  { "dup2" },
  { "dup3" },
  { "epoll_create" },
  { "epoll_create1" },
  { "epoll_ctl" },
  { "epoll_ctl_old" },
  { "epoll_pwait" },
  { "epoll_pwait2" },
  { "epoll_wait" },
  { "epoll_wait_old" },
  { "eventfd" },
  { "eventfd2" },
  { "execve" },
  { "execveat" },
  { "exit" },
  { "exit_group" },
  { "faccessat" },
  { "faccessat2" },
  { "fadvise64" },
  { "fadvise64_64" },
  { "fallocate" },
  { "fanotify_mark" },
  { "fchdir" },
  { "fchmod" },
  { "fchmodat" },
  { "fchmodat2" },
  { "fchown" },
  { "fchown32" },
  { "fchownat" },
  { "fcntl" },
  { "fcntl64" },
  { "fdatasync" },
  { "fgetxattr" },
  { "flistxattr" },
  { "flock" },
  { "fork" },
  { "fremovexattr" },
  { "fsetxattr" },
  { "fstat" },
  { "fstat64" },
  { "fstatat64" },
  { "fstatfs" },
  { "fstatfs64" },
  { "fsync" },
  { "ftruncate" },
  { "ftruncate64" },
  { "futex" },
  { "futex_requeue" },
  { "futex_time64" },
  { "futex_wait" },
  { "futex_waitv" },
  { "futex_wake" },
  { "futimesat" },
  { "getcpu" },
  { "getcwd" },
  { "getdents" },
  { "getdents64" },
  { "getegid" },
  { "getegid32" },
  { "geteuid" },
  { "geteuid32" },
  { "getgid" },
  { "getgid32" },
  { "getgroups" },
  { "getgroups32" },
  { "getitimer" },
  { "getpeername" },
  { "getpgid" },
  { "getpgrp" },
  { "getpid" },
  { "getppid" },
  { "getpriority" },
  { "getrandom" },
  { "getresgid" },
  { "getresgid32" },
  { "getresuid" },
  { "getresuid32" },
  { "getrlimit" },
  { "get_robust_list" },
  { "getrusage" },
  { "getsid" },
  { "getsockname" },
  { "getsockopt" },
  { "get_thread_area" },
  { "gettid" },
  { "gettimeofday" },
  { "getuid" },
  { "getuid32" },
  { "getxattr" },
  { "inotify_add_watch" },
  { "inotify_init" },
  { "inotify_init1" },
  { "inotify_rm_watch" },
  { "io_cancel" },
  { "ioctl" },
  { "io_destroy" },
  { "io_getevents" },
  { "io_pgetevents" },
  { "io_pgetevents_time64" },
  { "ioprio_get" },
  { "ioprio_set" },
  { "io_setup" },
  { "io_submit" },
  { "ipc" },
  { "kill" },
  { "landlock_add_rule" },
  { "landlock_create_ruleset" },
  { "landlock_restrict_self" },
  { "lchown" },
  { "lchown32" },
  { "lgetxattr" },
  { "link" },
  { "linkat" },
  { "listen" },
  { "listxattr" },
  { "llistxattr" },
  { "_llseek" },
  { "lremovexattr" },
  { "lseek" },
  { "lsetxattr" },
  { "lstat" },
  { "lstat64" },
  { "madvise" },
  { "membarrier" },
  { "memfd_create" },
  { "memfd_secret" },
  { "mincore" },
  { "mkdir" },
  { "mkdirat" },
  { "mknod" },
  { "mknodat" },
  { "mlock" },
  { "mlock2" },
  { "mlockall" },
  { "mmap" },
  { "mmap2" },
  { "mprotect" },
  { "mq_getsetattr" },
  { "mq_notify" },
  { "mq_open" },
  { "mq_timedreceive" },
  { "mq_timedreceive_time64" },
  { "mq_timedsend" },
  { "mq_timedsend_time64" },
  { "mq_unlink" },
  { "mremap" },
  { "msgctl" },
  { "msgget" },
  { "msgrcv" },
  { "msgsnd" },
  { "msync" },
  { "munlock" },
  { "munlockall" },
  { "munmap" },
  { "name_to_handle_at" },
  { "nanosleep" },
  { "newfstatat" },
  { "_newselect" },
  { "open" },
  { "openat" },
  { "openat2" },
  { "pause" },
  { "pidfd_open" },
  { "pidfd_send_signal" },
  { "pipe" },
  { "pipe2" },
  { "pkey_alloc" },
  { "pkey_free" },
  { "pkey_mprotect" },
  { "poll" },
  { "ppoll" },
  { "ppoll_time64" },
  { "prctl" },
  { "pread64" },
  { "preadv" },
  { "preadv2" },
  { "prlimit64" },
  { "process_mrelease" },
  { "pselect6" },
  { "pselect6_time64" },
  { "ptrace" },
  { "pwrite64" },
  { "pwritev" },
  { "pwritev2" },
  { "read" },
  { "readahead" },
  { "readlink" },
  { "readlinkat" },
  { "readv" },
  { "recv" },
  { "recvfrom" },
  { "recvmmsg" },
  { "recvmmsg_time64" },
  { "recvmsg" },
  { "remap_file_pages" },
  { "removexattr" },
  { "rename" },
  { "renameat" },
  { "renameat2" },
  { "restart_syscall" },
  { "rmdir" },
  { "rseq" },
  { "rt_sigaction" },
  { "rt_sigpending" },
  { "rt_sigprocmask" },
  { "rt_sigqueueinfo" },
  { "rt_sigreturn" },
  { "rt_sigsuspend" },
  { "rt_sigtimedwait" },
  { "rt_sigtimedwait_time64" },
  { "rt_tgsigqueueinfo" },
  { "sched_getaffinity" },
  { "sched_getattr" },
  { "sched_getparam" },
  { "sched_get_priority_max" },
  { "sched_get_priority_min" },
  { "sched_getscheduler" },
  { "sched_rr_get_interval" },
  { "sched_rr_get_interval_time64" },
  { "sched_setaffinity" },
  { "sched_setattr" },
  { "sched_setparam" },
  { "sched_setscheduler" },
  { "sched_yield" },
  { "seccomp" },
  { "select" },
  { "semctl" },
  { "semget" },
  { "semop" },
  { "semtimedop" },
  { "semtimedop_time64" },
  { "send" },
  { "sendfile" },
  { "sendfile64" },
  { "sendmmsg" },
  { "sendmsg" },
  { "sendto" },
  { "setfsgid" },
  { "setfsgid32" },
  { "setfsuid" },
  { "setfsuid32" },
  { "setgid" },
  { "setgid32" },
  { "setgroups" },
  { "setgroups32" },
  { "setitimer" },
  { "setpgid" },
  { "setpriority" },
  { "setregid" },
  { "setregid32" },
  { "setresgid" },
  { "setresgid32" },
  { "setresuid" },
  { "setresuid32" },
  { "setreuid" },
  { "setreuid32" },
  { "setrlimit" },
  { "set_robust_list" },
  { "setsid" },
  { "setsockopt" },
  { "set_thread_area" },
  { "set_tid_address" },
  { "setuid" },
  { "setuid32" },
  { "setxattr" },
  { "shmat" },
  { "shmctl" },
  { "shmdt" },
  { "shmget" },
  { "shutdown" },
  { "sigaltstack" },
  { "signalfd" },
  { "signalfd4" },
  { "sigprocmask" },
  { "sigreturn" },
  { "socketcall" },
  { "socketpair" },
  { "splice" },
  { "stat" },
  { "stat64" },
  { "statfs" },
  { "statfs64" },
  { "statx" },
  { "symlink" },
  { "symlinkat" },
  { "sync" },
  { "sync_file_range" },
  { "syncfs" },
  { "sysinfo" },
  { "tee" },
  { "tgkill" },
  { "time" },
  { "timer_create" },
  { "timer_delete" },
  { "timer_getoverrun" },
  { "timer_gettime" },
  { "timer_gettime64" },
  { "timer_settime" },
  { "timer_settime64" },
  { "timerfd_create" },
  { "timerfd_gettime" },
  { "timerfd_gettime64" },
  { "timerfd_settime" },
  { "timerfd_settime64" },
  { "times" },
  { "tkill" },
  { "truncate" },
  { "truncate64" },
  { "ugetrlimit" },
  { "umask" },
  { "uname" },
  { "unlink" },
  { "unlinkat" },
  { "utime" },
  { "utimensat" },
  { "utimensat_time64" },
  { "utimes" },
  { "vfork" },
  { "vmsplice" },
  { "wait4" },
  { "waitid" },
  { "waitpid" },
  { "write" },
  { "writev" },
  /* architecture-specific */
  { "arch_prctl", NULL, ARCH_X86 },
  { "modify_ldt", NULL, ARCH_X86 },
  { "arm_fadvise64_64", NULL, ARCH_ARM },
  { "arm_sync_file_range", NULL, ARCH_ARM },
  { "sync_file_range2", NULL, ARCH_ARM },
  { "breakpoint", NULL, ARCH_ARM },
  { "cacheflush", NULL, ARCH_ARM },
  { "set_tls", NULL, ARCH_ARM },
  /* with a capability */
  { "bpf", "CAP_SYS_ADMIN" },
  { "bpf", "CAP_BPF" },
  { "clone3", "CAP_SYS_ADMIN" },
  { "fanotify_init", "CAP_SYS_ADMIN" },
  { "fsconfig", "CAP_SYS_ADMIN" },
  { "fsmount", "CAP_SYS_ADMIN" },
  { "fsopen", "CAP_SYS_ADMIN" },
  { "fspick", "CAP_SYS_ADMIN" },
  { "lookup_dcookie", "CAP_SYS_ADMIN" },
  { "mount", "CAP_SYS_ADMIN" },
  { "mount_setattr", "CAP_SYS_ADMIN" },
  { "move_mount", "CAP_SYS_ADMIN" },
  { "open_tree", "CAP_SYS_ADMIN" },
  { "perf_event_open", "CAP_SYS_ADMIN" },
  { "perf_event_open", "CAP_PERFMON" },
  { "quotactl", "CAP_SYS_ADMIN" },
  { "quotactl_fd", "CAP_SYS_ADMIN" },
  { "setdomainname", "CAP_SYS_ADMIN" },
  { "sethostname", "CAP_SYS_ADMIN" },
  { "setns", "CAP_SYS_ADMIN" },
  { "syslog", "CAP_SYS_ADMIN" },
  { "syslog", "CAP_SYSLOG" },
  { "umount", "CAP_SYS_ADMIN" },
  { "umount2", "CAP_SYS_ADMIN" },
  { "unshare", "CAP_SYS_ADMIN" },
  { "reboot", "CAP_SYS_BOOT" },
  { "chroot", "CAP_SYS_CHROOT" },
  { "delete_module", "CAP_SYS_MODULE" },
  { "init_module", "CAP_SYS_MODULE" },
  { "finit_module", "CAP_SYS_MODULE" },
  { "acct", "CAP_SYS_PACCT" },
  { "kcmp", "CAP_SYS_PTRACE" },
  { "pidfd_getfd", "CAP_SYS_PTRACE" },
  { "process_madvise", "CAP_SYS_PTRACE" },
  { "process_vm_readv", "CAP_SYS_PTRACE" },
  { "process_vm_writev", "CAP_SYS_PTRACE" },
  { "iopl", "CAP_SYS_RAWIO", ARCH_X86 },
  { "ioperm", "CAP_SYS_RAWIO", ARCH_X86 },
  { "settimeofday", "CAP_SYS_TIME" },
  { "stime", "CAP_SYS_TIME" },
  { "clock_settime", "CAP_SYS_TIME" },
  { "clock_settime64", "CAP_SYS_TIME" },
  { "vhangup", "CAP_SYS_TTY_CONFIG" },
  { "get_mempolicy", "CAP_SYS_NICE" },
  { "mbind", "CAP_SYS_NICE" },
  { "set_mempolicy", "CAP_SYS_NICE" },
  { "set_mempolicy_home_node", "CAP_SYS_NICE" },
  { "open_by_handle_at", "CAP_DAC_READ_SEARCH" },
};

/* personality(2) values that only select an execution domain glibc and qemu-user use. */
static const guint64 personality_allowed[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };

#define CLONE_NAMESPACE_FLAGS                                                                      \
  0x7E020000ULL /* NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET */
#define AF_VSOCK_FAMILY 40
#define ENOSYS_ERRNO 38

static gboolean
arch_matches (SyscallArch arch)
{
#if defined(__x86_64__) || defined(__i386__)
  return arch != ARCH_ARM;
#elif defined(__aarch64__) || defined(__arm__)
  return arch != ARCH_X86;
#else
  return arch == ARCH_ANY;
#endif
}

static gboolean
caps_contain (const char *const *caps, const char *cap)
{
  return caps != NULL && g_strv_contains (caps, cap);
}

static JsonArray *
architectures_array (void)
{
  JsonArray *arches = json_array_new ();
#if defined(__x86_64__) || defined(__i386__)
  json_array_add_string_element (arches, "SCMP_ARCH_X86_64");
  json_array_add_string_element (arches, "SCMP_ARCH_X86");
  json_array_add_string_element (arches, "SCMP_ARCH_X32");
#elif defined(__aarch64__) || defined(__arm__)
  json_array_add_string_element (arches, "SCMP_ARCH_AARCH64");
  json_array_add_string_element (arches, "SCMP_ARCH_ARM");
#endif
  return arches;
}

static JsonObject *
rule_new (const char *action, const char *name)
{
  JsonObject *rule = json_object_new ();
  JsonArray *names = json_array_new ();
  if (name != NULL)
    json_array_add_string_element (names, name);
  json_object_set_array_member (rule, "names", names);
  json_object_set_string_member (rule, "action", action);
  return rule;
}

static JsonObject *
arg_new (guint index, guint64 value, guint64 value_two, const char *op)
{
  JsonObject *arg = json_object_new ();
  json_object_set_int_member (arg, "index", index);
  json_object_set_int_member (arg, "value", (gint64) value);
  json_object_set_int_member (arg, "valueTwo", (gint64) value_two);
  json_object_set_string_member (arg, "op", op);
  return arg;
}

static JsonObject *
rule_with_arg (const char *name, JsonObject *arg)
{
  JsonObject *rule = rule_new ("SCMP_ACT_ALLOW", name);
  JsonArray *args = json_array_new ();
  json_array_add_object_element (args, arg);
  json_object_set_array_member (rule, "args", args);
  return rule;
}

/* The unconditional allow-list plus whatever the container's capabilities unlock. */
static JsonObject *
allow_rule (const char *const *caps)
{
  JsonObject *rule = rule_new ("SCMP_ACT_ALLOW", NULL);
  JsonArray *names = json_object_get_array_member (rule, "names");
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (gsize i = 0; i < G_N_ELEMENTS (allowed); i++)
    {
      const AllowedSyscall *s = &allowed[i];
      if (!arch_matches (s->arch) || (s->cap != NULL && !caps_contain (caps, s->cap))
          || !crisp_seccomp_syscall_is_known (s->name)
          || !g_hash_table_add (seen, (char *) s->name))
        continue;
      json_array_add_string_element (names, s->name);
    }
  return rule;
}

static void
add_conditional_rules (JsonArray *syscalls, const char *const *caps)
{
  for (gsize i = 0; i < G_N_ELEMENTS (personality_allowed); i++)
    json_array_add_object_element (
        syscalls,
        rule_with_arg ("personality", arg_new (0, personality_allowed[i], 0, "SCMP_CMP_EQ")));
  json_array_add_object_element (
      syscalls, rule_with_arg ("socket", arg_new (0, AF_VSOCK_FAMILY, 0, "SCMP_CMP_NE")));
  if (caps_contain (caps, "CAP_SYS_ADMIN"))
    {
      json_array_add_object_element (syscalls, rule_new ("SCMP_ACT_ALLOW", "clone"));
      return;
    }
  /* Without CAP_SYS_ADMIN, clone may not create namespaces; clone3's flags live in memory
   * seccomp cannot read, so it answers ENOSYS and libc falls back to clone. */
  json_array_add_object_element (
      syscalls,
      rule_with_arg ("clone", arg_new (0, CLONE_NAMESPACE_FLAGS, 0, "SCMP_CMP_MASKED_EQ")));
  if (crisp_seccomp_syscall_is_known ("clone3"))
    {
      JsonObject *clone3 = rule_new ("SCMP_ACT_ERRNO", "clone3");
      json_object_set_int_member (clone3, "errnoRet", ENOSYS_ERRNO);
      json_array_add_object_element (syscalls, clone3);
    }
}

JsonNode *
crisp_seccomp_default_profile (const char *const *caps)
{
  JsonObject *profile = json_object_new ();
  json_object_set_string_member (profile, "defaultAction", "SCMP_ACT_ERRNO");
  json_object_set_array_member (profile, "architectures", architectures_array ());
  JsonArray *syscalls = json_array_new ();
  json_array_add_object_element (syscalls, allow_rule (caps));
  add_conditional_rules (syscalls, caps);
  json_object_set_array_member (profile, "syscalls", syscalls);
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);
  json_node_take_object (node, profile);
  return node;
}
