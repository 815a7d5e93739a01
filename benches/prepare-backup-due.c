/*
 * benches/session-start.sh's --prepare step for the backup-due and prepare-control
 * scenarios, as one small process instead of a shell and five tools (sh, find, ls, flock,
 * touch, rm), whose start-ups left the CPU caches cold for the timed run and cost the hook
 * 0.3-0.7 ms that /bin/true does not pay (BENCHMARKS.md, "A bench artifact").
 *
 *   prepare-backup-due DATA_DIR BACKUP_DIR [PROJECT_DIR]
 *
 * 1. When DATA_DIR/state/backup-requested was set in the last 5 s (the previous timed run
 *    started a backup), wait up to 5 s for an archive BACKUP_DIR/backup-*-*.tar.gz;
 * 2. take and drop DATA_DIR/backup.lock (flock), so that backup has finished;
 * 3. set the marker's times 11 minutes back, creating it if missing (the hook requests at most
 *    one backup per 10 minutes);
 * 4. remove BACKUP_DIR and everything in it;
 * 5. with PROJECT_DIR, wait up to 5 s until no `ctxopt backup create` of it runs (Linux:
 *    /proc/<pid>/cmdline): its last steps after the lock (records, exit) are not the hook's;
 * 6. syncfs: the journal commits of the backup's fsyncs and of the removal happen now, not
 *    during the timed run (the shell script took long enough for them to finish by chance).
 * Exit status 0, or 1 with a message when a step fails.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int has_archive(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        /* backup-YYYYMMDD-HHMMSS.tar.gz: the hourly archive, two dashes. */
        const char *first = strchr(e->d_name, '-');
        if (strncmp(e->d_name, "backup-", 7) == 0 && first && strchr(first + 1, '-') &&
            n > 7 && strcmp(e->d_name + n - 7, ".tar.gz") == 0) {
            found = 1;
            break;
        }
    }
    closedir(d);
    return found;
}

/* Whether a process runs `ctxopt backup create ... PROJECT ...` (its NUL-separated argv). */
static int backup_running(const char *project) {
    DIR *proc = opendir("/proc");
    if (!proc) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(proc))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
        char path[300], buf[8192];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        int backup = 0, create = 0, ours = 0;
        for (char *arg = buf; arg < buf + n; arg += strlen(arg) + 1) {
            if (strcmp(arg, "backup") == 0) backup = 1;
            else if (strcmp(arg, "create") == 0) create = backup;
            else if (strcmp(arg, project) == 0) ours = 1;
        }
        found = backup && create && ours;
    }
    closedir(proc);
    return found;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    if (remove(path) != 0) { perror(path); return 1; }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s DATA_DIR BACKUP_DIR [PROJECT_DIR]\n", argv[0]);
        return 1;
    }
    char marker[4096], lock[4096];
    snprintf(marker, sizeof marker, "%s/state/backup-requested", argv[1]);
    snprintf(lock, sizeof lock, "%s/backup.lock", argv[1]);

    struct stat st;
    if (stat(marker, &st) == 0 && time(NULL) - st.st_mtime <= 5) {
        for (int i = 0; i < 1000 && !has_archive(argv[2]); i++) {
            struct timespec pause = {0, 5 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) { perror(lock); return 1; }
    close(fd);

    struct timespec times[2];
    clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= 11 * 60;
    times[1] = times[0];
    int m = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600); /* touch(1) creates it too */
    if (m < 0 || futimens(m, times) != 0) { perror(marker); return 1; }
    close(m);

    if (access(argv[2], F_OK) == 0 &&
        nftw(argv[2], remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        return 1;
    }
    if (argc == 4) {
        for (int i = 0; i < 1000 && backup_running(argv[3]); i++) {
            struct timespec pause = {0, 5 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        syncfs(dir);
        close(dir);
    }
    return 0;
}
