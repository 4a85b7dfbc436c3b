/* hangfs: a FUSE filesystem that stands in for a dead NFS server in the storage tests.
 *
 * It serves one small file. While "hung", every statfs call blocks inside the filesystem, exactly as a
 * hard-mounted NFS share does when its server is gone. SIGUSR1 hangs it, SIGUSR2 releases it (the
 * blocked calls then answer); HANGFS_START_HUNG=1 in the environment starts it hung.
 *
 *   hangfs -f -o fsname=hangfs,subtype=hangfs MOUNTPOINT      (fstype "fuse.hangfs")
 *
 * The statfs answer is fixed so tests can check the numbers: 4096-byte blocks, 1000 blocks, 600 free,
 * 500 available, 100 inodes, 40 free.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Set from signal handlers, read by FUSE's worker threads: a lock-free atomic is safe for both. */
static atomic_int g_hung = 0;
static const char kContent[] = "hangfs answers\n";

static void on_hang(int sig) {
  (void)sig;
  atomic_store(&g_hung, 1);
}

static void on_release(int sig) {
  (void)sig;
  atomic_store(&g_hung, 0);
}

static int hang_getattr(const char* path, struct stat* st, struct fuse_file_info* fi) {
  (void)fi;
  memset(st, 0, sizeof(*st));
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return 0;
  }
  if (strcmp(path, "/hello") == 0) {
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = (off_t)strlen(kContent);
    return 0;
  }
  return -ENOENT;
}

static int hang_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info* fi,
                        enum fuse_readdir_flags flags) {
  (void)off;
  (void)fi;
  (void)flags;
  if (strcmp(path, "/") != 0) return -ENOENT;
  fill(buf, ".", NULL, 0, 0);
  fill(buf, "..", NULL, 0, 0);
  fill(buf, "hello", NULL, 0, 0);
  return 0;
}

static int hang_open(const char* path, struct fuse_file_info* fi) {
  if (strcmp(path, "/hello") != 0) return -ENOENT;
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EACCES;
  return 0;
}

static int hang_read(const char* path, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)fi;
  if (strcmp(path, "/hello") != 0) return -ENOENT;
  const size_t len = strlen(kContent);
  if ((size_t)off >= len) return 0;
  if (off + size > len) size = len - (size_t)off;
  memcpy(buf, kContent + off, size);
  return (int)size;
}

static int hang_statfs(const char* path, struct statvfs* st) {
  (void)path;
  /* A dead server: the call neither answers nor fails until someone releases it. */
  const struct timespec tick = {0, 10 * 1000 * 1000};
  while (atomic_load(&g_hung)) nanosleep(&tick, NULL);
  memset(st, 0, sizeof(*st));
  st->f_bsize = 4096;
  st->f_frsize = 4096;
  st->f_blocks = 1000;
  st->f_bfree = 600;
  st->f_bavail = 500;
  st->f_files = 100;
  st->f_ffree = 40;
  st->f_namemax = 255;
  return 0;
}

static const struct fuse_operations kOps = {
    .getattr = hang_getattr,
    .open = hang_open,
    .read = hang_read,
    .statfs = hang_statfs,
    .readdir = hang_readdir,
};

int main(int argc, char* argv[]) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = on_hang;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = on_release;
  sigaction(SIGUSR2, &sa, NULL);
  const char* start_hung = getenv("HANGFS_START_HUNG");
  if (start_hung != NULL && strcmp(start_hung, "1") == 0) atomic_store(&g_hung, 1);
  return fuse_main(argc, argv, &kOps, NULL);
}
