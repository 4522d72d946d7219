/* fault_shim — an LD_PRELOAD library that injects file-system faults into
 * the calls a tradestate backend makes, for paths under one directory.
 *
 * Environment:
 *   TS_FAULT      one of
 *                   enospc_after_bytes:N  write/pwrite fail with ENOSPC once N bytes
 *                                         were written (a write crossing N is short);
 *                                         posix_fallocate/ftruncate growth fail too
 *                   eio_fsync             fsync/fdatasync/msync fail with EIO
 *                   eacces_open           opening for writing/creating fails with EACCES
 *                                         (also mkdir, link, rename, unlink)
 *                   erofs_open            the same with EROFS
 *                   rename_fail           rename/renameat fail with EIO
 *   TS_FAULT_DIR  only paths under this directory are affected (required);
 *                 files under a "logs" subdirectory are never affected
 *   TS_FAULT_ARM  optional path: faults are injected only while this file exists
 *   TS_FAULT_LOG  optional path: one line per event is appended:
 *                   FAULT <call> <path>     a fault was injected
 *                   RETRY <call> <path>     fsync/fdatasync/msync on a file descriptor
 *                                           (or mapping) whose sync already failed
 *                   SYNC <call> <path>      a sync call that was let through
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

enum fault_kind { F_NONE, F_ENOSPC, F_EIO_FSYNC, F_EACCES, F_EROFS, F_RENAME };

#define MAX_FD 4096
#define MAX_MAPS 64

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int inited;
static enum fault_kind kind = F_NONE;
static long long byte_budget;
static long long bytes_written;
static char dir[PATH_MAX];
static size_t dir_len;
static const char* arm_file;
static const char* log_file;
static char* fd_path[MAX_FD];     /* tracked files: path, or NULL */
static unsigned char fd_failed[MAX_FD]; /* a sync on this fd failed */
static struct {
    char* addr;
    size_t len;
    char* path;
    int failed;
} maps[MAX_MAPS];

#define REAL(ret, name, ...)                                       \
    static ret (*real_##name)(__VA_ARGS__);                        \
    static void load_##name(void) {                                \
        if (!real_##name) *(void**)(&real_##name) = dlsym(RTLD_NEXT, #name); \
    }

REAL(int, open, const char*, int, ...)
REAL(int, openat, int, const char*, int, ...)
REAL(int, close, int)
REAL(ssize_t, write, int, const void*, size_t)
REAL(ssize_t, pwrite, int, const void*, size_t, off_t)
REAL(ssize_t, pwrite64, int, const void*, size_t, off_t)
REAL(int, fsync, int)
REAL(int, fdatasync, int)
REAL(int, msync, void*, size_t, int)
REAL(void*, mmap, void*, size_t, int, int, int, off_t)
REAL(int, munmap, void*, size_t)
REAL(int, rename, const char*, const char*)
REAL(int, renameat, int, const char*, int, const char*)
REAL(int, link, const char*, const char*)
REAL(int, unlink, const char*)
REAL(int, mkdir, const char*, mode_t)
REAL(int, posix_fallocate, int, off_t, off_t)
REAL(int, ftruncate, int, off_t)

static void init(void) {
    if (inited) return;
    inited = 1;
    const char* f = getenv("TS_FAULT");
    const char* d = getenv("TS_FAULT_DIR");
    arm_file = getenv("TS_FAULT_ARM");
    log_file = getenv("TS_FAULT_LOG");
    if (!f || !d || !*d) return;
    if (!realpath(d, dir)) {
        strncpy(dir, d, sizeof dir - 1);
    }
    dir_len = strlen(dir);
    if (strncmp(f, "enospc_after_bytes:", 19) == 0) {
        kind = F_ENOSPC;
        byte_budget = atoll(f + 19);
    } else if (strcmp(f, "eio_fsync") == 0) {
        kind = F_EIO_FSYNC;
    } else if (strcmp(f, "eacces_open") == 0) {
        kind = F_EACCES;
    } else if (strcmp(f, "erofs_open") == 0) {
        kind = F_EROFS;
    } else if (strcmp(f, "rename_fail") == 0) {
        kind = F_RENAME;
    } else {
        fprintf(stderr, "fault_shim: unknown TS_FAULT '%s'\n", f);
        abort();
    }
}

static int armed(void) {
    if (kind == F_NONE) return 0;
    if (!arm_file) return 1;
    struct stat st;
    return stat(arm_file, &st) == 0;
}

static void log_event(const char* what, const char* call, const char* path) {
    if (!log_file) return;
    load_open();
    load_write();
    load_close();
    int fd = real_open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char line[PATH_MAX + 64];
    int n = snprintf(line, sizeof line, "%s %s %s\n", what, call, path ? path : "?");
    if (n > 0) (void)!real_write(fd, line, (size_t)n);
    real_close(fd);
}

/* Absolute form of `p` (relative to `dirfd`), without resolving symlinks of the last part. */
static int under_dir(int dirfd, const char* p, char* out) {
    if (!dir_len || !p) return 0;
    char buf[PATH_MAX];
    if (p[0] == '/') {
        snprintf(buf, sizeof buf, "%s", p);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (!getcwd(base, sizeof base)) return 0;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof base - 1);
            if (n < 0) return 0;
            base[n] = 0;
        }
        snprintf(buf, sizeof buf, "%s/%s", base, p);
    }
    /* resolve the directory part (state dirs may be given through symlinks such as /tmp) */
    char dpart[PATH_MAX], res[PATH_MAX];
    snprintf(dpart, sizeof dpart, "%s", buf);
    char* slash = strrchr(dpart, '/');
    const char* last = "";
    if (slash) {
        *slash = 0;
        last = buf + (slash - dpart) + 1;
    }
    if (realpath(dpart[0] ? dpart : "/", res)) snprintf(buf, sizeof buf, "%s/%s", res, last);
    if (strncmp(buf, dir, dir_len) != 0 || (buf[dir_len] != '/' && buf[dir_len] != 0)) return 0;
    const char* rest = buf + dir_len;
    size_t rest_len = strlen(rest);
    if (strstr(rest, "/logs/") || (rest_len >= 5 && strcmp(rest + rest_len - 5, "/logs") == 0)) return 0;
    if (out) snprintf(out, PATH_MAX, "%s", buf);
    return 1;
}

static void track(int fd, const char* path) {
    if (fd < 0 || fd >= MAX_FD) return;
    free(fd_path[fd]);
    fd_path[fd] = path ? strdup(path) : NULL;
    fd_failed[fd] = 0;
}

static const char* tracked(int fd) { return (fd >= 0 && fd < MAX_FD) ? fd_path[fd] : NULL; }

static int open_common(int dirfd, const char* p, int flags, mode_t mode, int at) {
    init();
    char abs_path[PATH_MAX];
    int mine = under_dir(dirfd, p, abs_path);
    int writes = (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
    if (mine && writes && (kind == F_EACCES || kind == F_EROFS) && armed()) {
        log_event("FAULT", "open", abs_path);
        errno = kind == F_EACCES ? EACCES : EROFS;
        return -1;
    }
    int fd;
    if (at) {
        load_openat();
        fd = real_openat(dirfd, p, flags, mode);
    } else {
        load_open();
        fd = real_open(p, flags, mode);
    }
    if (fd >= 0) {
        pthread_mutex_lock(&mu);
        track(fd, mine ? abs_path : NULL);
        pthread_mutex_unlock(&mu);
    }
    return fd;
}

#define MODE_ARG(flags)                                   \
    mode_t mode = 0;                                      \
    if ((flags) & (O_CREAT | __O_TMPFILE)) {              \
        va_list ap;                                       \
        va_start(ap, flags);                              \
        mode = (mode_t)va_arg(ap, int);                   \
        va_end(ap);                                       \
    }

int open(const char* p, int flags, ...) { MODE_ARG(flags) return open_common(AT_FDCWD, p, flags, mode, 0); }
int open64(const char* p, int flags, ...) { MODE_ARG(flags) return open_common(AT_FDCWD, p, flags, mode, 0); }
int openat(int dfd, const char* p, int flags, ...) { MODE_ARG(flags) return open_common(dfd, p, flags, mode, 1); }
int openat64(int dfd, const char* p, int flags, ...) { MODE_ARG(flags) return open_common(dfd, p, flags, mode, 1); }

int close(int fd) {
    load_close();
    pthread_mutex_lock(&mu);
    if (fd >= 0 && fd < MAX_FD && fd_path[fd]) track(fd, NULL);
    pthread_mutex_unlock(&mu);
    return real_close(fd);
}

/* ENOSPC budget: returns how many of `n` bytes may be written (0: fail). */
static size_t allowed_bytes(int fd, size_t n, const char* call) {
    init();
    const char* p = tracked(fd);
    if (!p || kind != F_ENOSPC || !armed()) return n;
    pthread_mutex_lock(&mu);
    long long left = byte_budget - bytes_written;
    size_t ok = left <= 0 ? 0 : ((long long)n < left ? n : (size_t)left);
    bytes_written += (long long)ok;
    pthread_mutex_unlock(&mu);
    if (ok == 0) log_event("FAULT", call, p);
    return ok;
}

ssize_t write(int fd, const void* b, size_t n) {
    load_write();
    size_t ok = allowed_bytes(fd, n, "write");
    if (n > 0 && ok == 0) {
        errno = ENOSPC;
        return -1;
    }
    return real_write(fd, b, ok);
}

ssize_t pwrite(int fd, const void* b, size_t n, off_t off) {
    load_pwrite();
    size_t ok = allowed_bytes(fd, n, "pwrite");
    if (n > 0 && ok == 0) {
        errno = ENOSPC;
        return -1;
    }
    return real_pwrite(fd, b, ok, off);
}

ssize_t pwrite64(int fd, const void* b, size_t n, off_t off) {
    load_pwrite64();
    size_t ok = allowed_bytes(fd, n, "pwrite64");
    if (n > 0 && ok == 0) {
        errno = ENOSPC;
        return -1;
    }
    return real_pwrite64(fd, b, ok, off);
}

static int sync_common(int fd, const char* call) {
    init();
    const char* p = tracked(fd);
    if (!p) return 1; /* not ours: let it through */
    if (fd_failed[fd]) log_event("RETRY", call, p);
    if (kind == F_EIO_FSYNC && armed()) {
        fd_failed[fd] = 1;
        log_event("FAULT", call, p);
        errno = EIO;
        return 0;
    }
    log_event("SYNC", call, p);
    return 1;
}

int fsync(int fd) {
    load_fsync();
    if (!sync_common(fd, "fsync")) return -1;
    return real_fsync(fd);
}

int fdatasync(int fd) {
    load_fdatasync();
    if (!sync_common(fd, "fdatasync")) return -1;
    return real_fdatasync(fd);
}

void* mmap(void* a, size_t len, int prot, int flags, int fd, off_t off) {
    load_mmap();
    void* m = real_mmap(a, len, prot, flags, fd, off);
    const char* p = tracked(fd);
    if (m != MAP_FAILED && p) {
        pthread_mutex_lock(&mu);
        for (int i = 0; i < MAX_MAPS; ++i)
            if (!maps[i].addr) {
                maps[i].addr = (char*)m;
                maps[i].len = len;
                maps[i].path = strdup(p);
                maps[i].failed = 0;
                break;
            }
        pthread_mutex_unlock(&mu);
    }
    return m;
}

int munmap(void* a, size_t len) {
    load_munmap();
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_MAPS; ++i)
        if (maps[i].addr == (char*)a) {
            free(maps[i].path);
            maps[i].addr = NULL;
            maps[i].path = NULL;
        }
    pthread_mutex_unlock(&mu);
    return real_munmap(a, len);
}

int msync(void* a, size_t len, int flags) {
    load_msync();
    init();
    for (int i = 0; i < MAX_MAPS; ++i) {
        char* base = maps[i].addr;
        if (!base || (char*)a < base || (char*)a >= base + maps[i].len) continue;
        if (maps[i].failed) log_event("RETRY", "msync", maps[i].path);
        if (kind == F_EIO_FSYNC && armed()) {
            maps[i].failed = 1;
            log_event("FAULT", "msync", maps[i].path);
            errno = EIO;
            return -1;
        }
        log_event("SYNC", "msync", maps[i].path);
        break;
    }
    return real_msync(a, len, flags);
}

static int path_fault(int dirfd, const char* p, const char* call, int for_rename) {
    init();
    char abs_path[PATH_MAX];
    if (!under_dir(dirfd, p, abs_path) || !armed()) return 0;
    int e = 0;
    if (kind == F_EACCES) e = EACCES;
    else if (kind == F_EROFS) e = EROFS;
    else if (kind == F_RENAME && for_rename) e = EIO;
    if (!e) return 0;
    log_event("FAULT", call, abs_path);
    return e;
}

int rename(const char* a, const char* b) {
    load_rename();
    int e = path_fault(AT_FDCWD, b, "rename", 1);
    if (e) {
        errno = e;
        return -1;
    }
    return real_rename(a, b);
}

int renameat(int da, const char* a, int db, const char* b) {
    load_renameat();
    int e = path_fault(db, b, "renameat", 1);
    if (e) {
        errno = e;
        return -1;
    }
    return real_renameat(da, a, db, b);
}

int link(const char* a, const char* b) {
    load_link();
    int e = path_fault(AT_FDCWD, b, "link", 0);
    if (e) {
        errno = e;
        return -1;
    }
    return real_link(a, b);
}

int unlink(const char* a) {
    load_unlink();
    int e = path_fault(AT_FDCWD, a, "unlink", 0);
    if (e) {
        errno = e;
        return -1;
    }
    return real_unlink(a);
}

int mkdir(const char* a, mode_t m) {
    load_mkdir();
    int e = path_fault(AT_FDCWD, a, "mkdir", 0);
    if (e) {
        errno = e;
        return -1;
    }
    return real_mkdir(a, m);
}

int posix_fallocate(int fd, off_t off, off_t len) {
    load_posix_fallocate();
    init();
    const char* p = tracked(fd);
    if (p && kind == F_ENOSPC && armed()) {
        log_event("FAULT", "posix_fallocate", p);
        return ENOSPC;
    }
    return real_posix_fallocate(fd, off, len);
}

int ftruncate(int fd, off_t len) {
    load_ftruncate();
    init();
    const char* p = tracked(fd);
    if (p && kind == F_ENOSPC && armed()) {
        struct stat st;
        if (fstat(fd, &st) == 0 && len > st.st_size) {
            log_event("FAULT", "ftruncate", p);
            errno = ENOSPC;
            return -1;
        }
    }
    return real_ftruncate(fd, len);
}
