/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <inttypes.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/execution.h"
#include "core/image-tree.h"
#include "core/images.h"
#include "core/manager.h"
#include "core/session.h"
#include "shared/json-util.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"

#define IMAGE_NAME_MAX 64
#define IMAGE_FILES_MAX 500000
#define IMAGE_JSON_MAX (64 * 1024)

struct ImageBuild {
        Manager *m;
        char *name;
        RuntimeId runtime;
        char **packages;
        char *via;
        ExecRequest *req;
        PoolRequest *pool_req;
        Sandbox *sb;
        Execution *exec;
        sd_event_source *child;
        ImageTreeStats stats;
        ImageBuildFn cb;
        void *userdata;
        ImageBuild *next;
};

bool image_serves(RuntimeId image_runtime, RuntimeId runtime) {
        return image_runtime == runtime || (runtime == RUNTIME_AGENT && image_runtime == RUNTIME_NODE);
}

bool image_has_agent(const Image *img) {
        if (img->runtime != RUNTIME_NODE)
                return false;
        for (char **p = img->packages; p && *p; p++)
                if (startswith(*p, AGENT_PACKAGE) && ((*p)[strlen(AGENT_PACKAGE)] == 0 || (*p)[strlen(AGENT_PACKAGE)] == '@'))
                        return true;
        return false;
}

const char *image_target(RuntimeId runtime) {
        switch (runtime) {
        case RUNTIME_PYTHON:
        case RUNTIME_DENO:
        case RUNTIME_BASH:
                return "/opt/isol8/image";
        case RUNTIME_NODE:
        case RUNTIME_BUN:
        case RUNTIME_AGENT:
                /* Found by require() and import alike, after /sandbox/node_modules. */
                return "/node_modules";
        default:
                return NULL;
        }
}

/* What the installer leaves in /sandbox, the image's layer. */
static const char *build_output(RuntimeId runtime) {
        switch (runtime) {
        case RUNTIME_PYTHON:
                return "sandbox/.local";
        case RUNTIME_DENO:
                return "tmp/.deno";     /* DENO_DIR: deno cache's npm packages */
        case RUNTIME_BASH:
                return "sandbox/.debroot";      /* isol8-deb-unpack's output */
        default:
                return "sandbox/node_modules";
        }
}

static bool name_ok(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > IMAGE_NAME_MAX || !(isalnum((unsigned char) s[0]) && !isupper((unsigned char) s[0])))
                return false;
        for (const char *c = s; *c; c++)
                if (!(islower((unsigned char) *c) || isdigit((unsigned char) *c) || strchr("._-", *c)))
                        return false;
        return true;
}

static const char *images_dir(Manager *m) {
        return m->images_dir;
}

static Image *image_free(Image *img) {
        if (!img)
                return NULL;
        pool_free(img->pool);
        free(img->name);
        strv_free(img->packages);
        free(img->layer);
        strv_free(img->env);
        free(img);
        return NULL;
}

/* python: the site-packages below the layer, for PYTHONPATH. */
static int push_env(Image *img, const char *fmt, ...) _printf_(2, 3);
static int push_env(Image *img, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? -ENOMEM : strv_push(&img->env, s);
}

static int image_env(Image *img) {
        _cleanup_free_ char *pattern = NULL;
        const char *t = image_target(img->runtime);
        glob_t g = {};
        int r = 0;

        switch (img->runtime) {
        case RUNTIME_DENO:
                /* deno reads its cache read-only from the image (it falls back where it would write). */
                return push_env(img, "DENO_DIR=%s", t);
        case RUNTIME_BASH: {
                /* Unpacked Debian packages: their programs first on PATH, their libraries found. */
                struct utsname u;
                const char *triplet = uname(&u) >= 0 && streq(u.machine, "aarch64") ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
                r = push_env(img, "PATH=%1$s/usr/local/bin:%1$s/usr/bin:%1$s/bin:%1$s/usr/sbin:"
                                  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", t);
                if (r >= 0)
                        r = push_env(img, "LD_LIBRARY_PATH=%1$s/usr/lib/%2$s:%1$s/lib/%2$s:%1$s/usr/lib", t, triplet);
                return r;
        }
        case RUNTIME_PYTHON:
                if (asprintf(&pattern, "%s/lib/python3*/site-packages", img->layer) < 0)
                        return -ENOMEM;
                if (glob(pattern, GLOB_ONLYDIR, NULL, &g) == 0 && g.gl_pathc > 0)
                        r = push_env(img, "PYTHONPATH=%s%s", t, g.gl_pathv[0] + strlen(img->layer));
                globfree(&g);
                return r;
        default:
                return 0;
        }
}

static int image_load_one(Manager *m, const char *name, Image **ret) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        Image *img;
        json_object *pk;
        const char *rt = NULL;
        size_t size;
        int r;

        if (asprintf(&path, "%s/%s/image.json", images_dir(m), name) < 0)
                return -ENOMEM;
        r = read_full_file(path, &text, IMAGE_JSON_MAX, &size);
        if (r < 0)
                return r;
        r = json_parse_limited(text, size, 4, &o);
        if (r < 0)
                return r;
        img = calloc(1, sizeof(Image));
        if (!img)
                return -ENOMEM;
        img->name = strdup(name);
        if (!img->name || asprintf(&img->layer, "%s/%s/layer", images_dir(m), name) < 0) {
                image_free(img);
                return -ENOMEM;
        }
        if (json_get_string(o, "runtime", &rt) < 0 || !rt || (r = runtime_from_string(rt)) < 0 || !image_target((RuntimeId) r)) {
                image_free(img);
                return -EBADMSG;
        }
        img->runtime = (RuntimeId) r;
        (void) json_get_u64(o, "createdUsec", &img->created_usec);
        (void) json_get_u64(o, "sizeBytes", &img->size_bytes);
        (void) json_get_u64(o, "files", &img->n_files);
        if (json_get_array(o, "packages", &pk) >= 0 && pk)
                for (size_t i = 0; i < json_object_array_length(pk); i++) {
                        const char *s = json_object_get_string(json_object_array_get_idx(pk, i));
                        if (s && strv_push(&img->packages, strdup(s)) < 0) {
                                image_free(img);
                                return -ENOMEM;
                        }
                }
        r = image_env(img);
        if (r < 0) {
                image_free(img);
                return r;
        }
        *ret = img;
        return 0;
}

static void image_add(Manager *m, Image *img) {
        img->next = m->images;
        m->images = img;
}

/* Removal happens in a child (a tree can be large): renamed out of the way first, so the name
 * is free at once and a crash leaves only a ".trash-" directory for the next start. */
static int on_remover_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        sd_event_source_disable_unref(s);
        return 0;
}

static void remove_in_background(Manager *m, const char *entry) {
        _cleanup_close_ int dfd = open(images_dir(m), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char trash[64];
        sd_event_source *src = NULL;
        pid_t pid;

        if (dfd < 0)
                return;
        snprintf(trash, sizeof(trash), ".trash-%d-%" PRIu64, (int) getpid(), now_usec(CLOCK_MONOTONIC));
        if (renameat(dfd, entry, dfd, trash) < 0) {
                log_warning_errno(-errno, "images: cannot move %s/%s away: %m", images_dir(m), entry);
                return;
        }
        pid = fork();
        if (pid < 0) {
                (void) image_tree_remove(dfd, trash);
                return;
        }
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                _exit(image_tree_remove(dfd, trash) < 0 ? 1 : 0);
        }
        if (sd_event_add_child(m->event, &src, pid, WEXITED, on_remover_exit, NULL) < 0)
                (void) waitpid(pid, NULL, 0);
}

int images_load(Manager *m) {
        _cleanup_(closedirp_helper) DIR *d = NULL;
        const char *state = getenv("STATE_DIRECTORY");
        int r;

        if (m->config.images_directory)
                m->images_dir = strdup(m->config.images_directory);
        else if (!isempty(state))
                r = asprintf(&m->images_dir, "%.*s/images", (int) strcspn(state, ":"), state), (void) r;
        else
                r = asprintf(&m->images_dir, "%s/.isol8/images", getenv("HOME") ?: "/root"), (void) r;
        if (!m->images_dir)
                return -ENOMEM;
        d = opendir(m->images_dir);
        if (!d)
                return errno == ENOENT ? 0 : log_warning_errno(-errno, "images: cannot read %s: %m", m->images_dir);
        for (struct dirent *de; (de = readdir(d));) {
                Image *img = NULL;
                if (de->d_name[0] == '.') {
                        if (startswith(de->d_name, ".build-") || startswith(de->d_name, ".trash-"))
                                remove_in_background(m, de->d_name);
                        continue;
                }
                if (!name_ok(de->d_name))
                        continue;
                r = image_load_one(m, de->d_name, &img);
                if (r < 0) {
                        log_warning_errno(r, "images: %s/%s is not an image, left alone: %m", m->images_dir, de->d_name);
                        continue;
                }
                image_add(m, img);
        }
        return 0;
}

static ImageBuild *build_free(ImageBuild *b);

void images_free(Manager *m) {
        while (m->builds)
                build_free(m->builds);
        while (m->images) {
                Image *next = m->images->next;
                image_free(m->images);
                m->images = next;
        }
        free(m->images_dir);
        m->images_dir = NULL;
}

Image *image_find(Manager *m, const char *name) {
        for (Image *i = m->images; i; i = i->next)
                if (streq(i->name, name))
                        return i;
        return NULL;
}

Image *image_match(Manager *m, RuntimeId runtime, char *const *packages) {
        Image *best = NULL;

        if (!packages || !*packages)
                return NULL;
        for (Image *i = m->images; i; i = i->next) {
                bool all = i->runtime == runtime;
                for (char *const *p = packages; all && *p; p++)
                        all = strv_contains(i->packages, *p);
                if (all && (!best || strv_length(i->packages) < strv_length(best->packages)))
                        best = i;
        }
        return best;
}

int image_pool(Manager *m, Image *img, Pool **ret) {
        if (!img->pool) {
                PoolConfig pc = {
                        .reuse = m->config.pool_strategy == POOL_FAST,
                        .clean = m->serve ? (unsigned) m->config.images_pool_size : 0,
                        .dirty = m->serve ? (unsigned) m->config.images_pool_size : 0,
                        .max_warm = m->serve ? (unsigned) m->config.max_concurrent + 2 : 0,
                        .sandbox_bytes = m->config.defaults.sandbox_bytes,
                        .tmp_bytes = m->config.defaults.tmp_bytes,
                        .image_dir = img->layer,
                        .image_target = image_target(img->runtime),
                };
                int r = pool_new(&img->pool, &m->provider, &pc);
                if (r < 0)
                        return r;
                pool_replenish(img->pool);
        }
        *ret = img->pool;
        return 0;
}

static bool image_in_use(Manager *m, Image *img) {
        PoolStats st = {};
        if (session_registry_uses_image(m->sessions, img->name))
                return true;
        if (!img->pool)
                return false;
        pool_stats(img->pool, &st);
        return st.in_use > 0 || st.waiting > 0;
}

static void audit_image(Manager *m, const Image *img, const char *name, bool built, const char *via) {
        _cleanup_free_ char *pk = img ? strv_join(img->packages, ",") : NULL;
        char size[32];
        AuditField f[] = {
                { "ISOL8_IMAGE", name },
                { "ISOL8_RUNTIME", img ? runtime_to_string(img->runtime) : NULL },
                { "ISOL8_PACKAGES", pk },
                { "ISOL8_IMAGE_BYTES", img ? size : NULL },
                { "ISOL8_VIA", via },
        };
        char message[256];

        snprintf(size, sizeof(size), "%" PRIu64, img ? img->size_bytes : 0);
        snprintf(message, sizeof(message), "Image %s %s (over %s)", name, built ? "built" : "removed", via ?: "?");
        audit_emit(m->audit, built ? AUDIT_MESSAGE_IMAGE_BUILT : AUDIT_MESSAGE_IMAGE_REMOVED, LOG_NOTICE,
                   built ? "image-built" : "image-removed", message, f, ELEMENTSOF(f));
}

static void image_drop(Manager *m, Image *img, const char *via) {
        for (Image **p = &m->images; *p; p = &(*p)->next)
                if (*p == img) {
                        *p = img->next;
                        break;
                }
        audit_image(m, img, img->name, false, via);
        log_info("images: %s removed (over %s)", img->name, via ?: "?");
        remove_in_background(m, img->name);
        image_free(img);
}

int manager_image_remove(Manager *m, const char *name, const char *via) {
        Image *img = name ? image_find(m, name) : NULL;
        if (!img)
                return OUTCOME_IMAGE_NOT_FOUND;
        if (image_in_use(m, img))
                return OUTCOME_IMAGE_IN_USE;
        image_drop(m, img, via);
        return OUTCOME_OK;
}

unsigned manager_images_cleanup(Manager *m, const char *via) {
        unsigned n = 0;
        for (Image *i = m->images, *next; i; i = next) {
                next = i->next;
                if (!image_in_use(m, i)) {
                        image_drop(m, i, via);
                        n++;
                }
        }
        return n;
}

/* Building. */

static ImageBuild *build_free(ImageBuild *b) {
        if (!b)
                return NULL;
        for (ImageBuild **p = &b->m->builds; *p; p = &(*p)->next)
                if (*p == b) {
                        *p = b->next;
                        break;
                }
        if (b->pool_req)
                pool_request_cancel(b->pool_req);
        execution_free(b->exec);
        if (b->child) {
                pid_t pid = 0;
                (void) sd_event_source_get_child_pid(b->child, &pid);
                if (pid > 0)
                        (void) kill(pid, SIGKILL);
                sd_event_source_disable_unref(b->child);
        }
        if (b->sb)
                b->m->provider.ops->free_sandbox(b->sb);
        exec_request_free(b->req);
        free(b->name);
        strv_free(b->packages);
        free(b->via);
        free(b);
        return NULL;
}

void image_build_forget(ImageBuild *b) {
        if (b)
                b->cb = NULL;
}

static void build_finish(ImageBuild *b, int error, Outcome o, const char *message, const Image *img) {
        if (error < 0)
                log_error_errno(error, "images: building %s failed: %m", b->name);
        else if (o != OUTCOME_OK)
                log_info("images: building %s failed: %s", b->name, message ?: outcome_message(o));
        if (b->cb)
                b->cb(error, o, message, img, b->userdata);
        build_free(b);
}

static void build_cleanup_dir(ImageBuild *b) {
        char tmp[IMAGE_NAME_MAX + 16];
        snprintf(tmp, sizeof(tmp), ".build-%s", b->name);
        remove_in_background(b->m, tmp);
}

static int write_new_file_at(int dfd, const char *name, const char *text) {
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        return loop_write(fd, text, strlen(text));
}

static int write_image_json(ImageBuild *b, int dfd) {
        _cleanup_json_ json_object *o = json_object_new_object(), *pk = json_object_new_array();
        const char *text;

        if (!o || !pk)
                return -ENOMEM;
        for (char **p = b->packages; *p; p++)
                if (json_object_array_add(pk, json_object_new_string(*p)) < 0)
                        return -ENOMEM;
        if (json_add(o, "name", json_object_new_string(b->name)) < 0 ||
            json_add(o, "runtime", json_object_new_string(runtime_to_string(b->runtime))) < 0 ||
            json_add(o, "packages", json_object_get(pk)) < 0 ||
            json_add(o, "createdUsec", json_object_new_int64((int64_t) now_usec(CLOCK_REALTIME))) < 0 ||
            json_add(o, "sizeBytes", json_object_new_int64((int64_t) b->stats.bytes)) < 0 ||
            json_add(o, "files", json_object_new_int64((int64_t) b->stats.files)) < 0)
                return -ENOMEM;
        text = json_to_string(o);
        return write_new_file_at(dfd, "image.json", text);
}

static int on_copy_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        ImageBuild *b = userdata;
        Manager *m = b->m;
        _cleanup_close_ int dfd = -EBADF, bfd = -EBADF;
        char tmp[IMAGE_NAME_MAX + 16];
        Image *img = NULL;
        int r;

        b->child = sd_event_source_disable_unref(b->child);
        b->sb = m->provider.ops->free_sandbox(b->sb);
        snprintf(tmp, sizeof(tmp), ".build-%s", b->name);
        if (si->si_code != CLD_EXITED || si->si_status != 0) {
                if (si->si_code != CLD_EXITED)
                        log_error("images: the copy of %s ended by signal %d", b->name, si->si_status);
                const char *why = si->si_code == CLD_EXITED && si->si_status == 2
                                          ? "the packages are larger than images.maxSize or hold too many files"
                                          : "the installed files could not be copied out of the build's sandbox";
                build_cleanup_dir(b);
                build_finish(b, 0, OUTCOME_IMAGE_BUILD_FAILED, why, NULL);
                return 0;
        }
        /* The child wrote the totals into the layer's parent as its exit status cannot. */
        dfd = open(images_dir(m), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        bfd = dfd < 0 ? -errno : openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (bfd < 0) {
                build_finish(b, bfd < 0 ? -errno : bfd, OUTCOME_OK, NULL, NULL);
                return 0;
        }
        {
                _cleanup_free_ char *line = NULL;
                r = read_one_line_file_at(bfd, "stats", &line);
                if (r >= 0 && sscanf(line, "%" SCNu64 " %" SCNu64, &b->stats.bytes, &b->stats.files) != 2)
                        r = -EBADMSG;
                (void) unlinkat(bfd, "stats", 0);
        }
        if (r >= 0)
                r = write_image_json(b, bfd);
        if (r >= 0 && image_find(m, b->name))
                r = -EEXIST;    /* cannot happen: the name was reserved by the build */
        if (r >= 0 && renameat(dfd, tmp, dfd, b->name) < 0)
                r = -errno;
        if (r >= 0)
                r = image_load_one(m, b->name, &img);
        if (r < 0) {
                build_cleanup_dir(b);
                build_finish(b, r, OUTCOME_OK, NULL, NULL);
                return 0;
        }
        image_add(m, img);
        log_info("images: %s built for %s (%s), %" PRIu64 " bytes in %" PRIu64 " files", img->name,
                 runtime_to_string(img->runtime), b->via, img->size_bytes, img->n_files);
        audit_image(m, img, img->name, true, b->via);
        build_finish(b, 0, OUTCOME_OK, NULL, img);
        return 0;
}

/* The installer is done: its files leave the sandbox in a child (a node_modules can be large),
 * read as the sandbox's user, written as root into .build-NAME, renamed once complete. */
static void start_copy(ImageBuild *b) {
        Manager *m = b->m;
        _cleanup_close_ int root = -EBADF, dfd = -EBADF, bfd = -EBADF;
        char tmp[IMAGE_NAME_MAX + 16];
        uid_t uid;
        pid_t pid;
        int r;

        snprintf(tmp, sizeof(tmp), ".build-%s", b->name);
        r = mkdir_p(images_dir(m), 0700);
        if (r < 0 && r != -EEXIST) {
                build_finish(b, r, OUTCOME_OK, NULL, NULL);
                return;
        }
        dfd = open(images_dir(m), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || (mkdirat(dfd, tmp, 0755) < 0 && errno != EEXIST) ||
            (bfd = openat(dfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                build_finish(b, -errno, OUTCOME_OK, NULL, NULL);
                return;
        }
        root = m->provider.ops->open_root(b->sb);
        if (root < 0) {
                build_finish(b, root, OUTCOME_OK, NULL, NULL);
                return;
        }
        uid = m->provider.ops->host_uid(b->sb);
        pid = fork();
        if (pid < 0) {
                build_finish(b, -errno, OUTCOME_OK, NULL, NULL);
                return;
        }
        if (pid == 0) {
                ImageTreeStats st = {};
                char line[64];
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                r = image_tree_copy(root, build_output(b->runtime), bfd, "layer", uid, (gid_t) uid, m->config.images_max_size,
                                    IMAGE_FILES_MAX, &st);
                if (r == -EFBIG)
                        _exit(2);
                if (r < 0) {
                        log_error_errno(r, "images: cannot copy the build of %s out of its sandbox: %m", b->name);
                        _exit(1);
                }
                snprintf(line, sizeof(line), "%" PRIu64 " %" PRIu64 "\n", st.bytes, st.files);
                r = write_new_file_at(bfd, "stats", line);
                if (r < 0)
                        log_error_errno(r, "images: cannot write the totals of %s: %m", b->name);
                _exit(r < 0 ? 1 : 0);
        }
        r = sd_event_add_child(m->event, &b->child, pid, WEXITED, on_copy_exit, b);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                build_finish(b, r, OUTCOME_OK, NULL, NULL);
        }
}

static void on_build_done(Execution *e, void *userdata) {
        ImageBuild *b = userdata;
        const ExecResult *res = execution_result(e);
        _cleanup_free_ char *msg = NULL;

        if (res->error < 0) {
                build_finish(b, res->error == -ECANCELED || res->error == -ESHUTDOWN ? 0 : res->error,
                             res->error == -ECANCELED || res->error == -ESHUTDOWN ? OUTCOME_SHUTTING_DOWN : OUTCOME_OK, NULL, NULL);
                return;
        }
        if (res->timed_out || res->setup_failed || res->exit_code != 0 || res->signal) {
                size_t n = res->err.size, skip = n > 2000 ? n - 2000 : 0;
                _cleanup_free_ char *err = utf8_sanitize(res->err.data ? res->err.data + skip : "", n - skip, NULL);
                if (asprintf(&msg, "%s%s%s", res->timed_out ? "Package installation timed out" :
                                                       res->install_failed ? "Package installation failed" : "The build failed",
                             err && *err ? ": " : "", err ?: "") < 0)
                        msg = NULL;
                build_finish(b, 0, OUTCOME_IMAGE_BUILD_FAILED, msg, NULL);
                return;
        }
        b->exec = execution_free(b->exec);
        (void) b->m->provider.ops->kill(b->sb);    /* whatever an install script left running */
        start_copy(b);
}

/* The packages installed on the host (whose /usr every sandbox has): a bash image leaves them out. */
static int host_packages(char **ret) {
        _cleanup_free_ char *status = NULL;
        Buffer b = {};
        int r;

        r = read_full_file("/var/lib/dpkg/status", &status, 64 << 20, NULL);
        if (r < 0)
                return log_error_errno(r, "images: cannot read /var/lib/dpkg/status: %m");
        for (char *st = status, *next; st && *st; st = next) {
                char *end = strstr(st, "\n\n");
                const char *pkg, *prov;
                next = end ? end + 2 : NULL;
                if (end)
                        *end = 0;
                if (!strstr(st, "\nStatus: install ok installed") || !(pkg = startswith(st, "Package: ") ? st + 9 : NULL))
                        continue;
                r = buffer_printf(&b, "%.*s\n", (int) strcspn(pkg, "\n"), pkg);
                /* what it provides satisfies a dependency too ("Provides: a, b (= 1)") */
                if (r >= 0 && (prov = strstr(st, "\nProvides: "))) {
                        _cleanup_free_ char *line = strndup(prov + 11, strcspn(prov + 11, "\n"));
                        for (char *save = NULL, *t = line ? strtok_r(line, ",", &save) : NULL; r >= 0 && t; t = strtok_r(NULL, ",", &save)) {
                                t += strspn(t, " ");
                                r = buffer_printf(&b, "%.*s\n", (int) strcspn(t, " ("), t);
                        }
                }
                if (r < 0) {
                        buffer_done(&b);
                        return -ENOMEM;
                }
        }
        *ret = buffer_steal_string(&b);
        return *ret ? 0 : -ENOMEM;
}

/* For a bash image: the installer's text (-ENOENT when it is not installed) and, once, the
 * suite (packages.debianSuite, else the host's VERSION_CODENAME, else bookworm). */
static int debian_prepare(Manager *m, char **ret_script) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (!m->packages.debian_suite) {
                _cleanup_free_ char *os = NULL;
                const char *v;
                if (m->config.packages_debian_suite)
                        m->packages.debian_suite = strdup(m->config.packages_debian_suite);
                else if (read_full_file("/etc/os-release", &os, 65536, NULL) >= 0 && (v = strstr(os, "VERSION_CODENAME=")) &&
                         v[17] && !strchr("\n\" ", v[17]))
                        m->packages.debian_suite = strndup(v + 17, strcspn(v + 17, "\n\" "));
                else
                        m->packages.debian_suite = strdup("bookworm");
                if (!m->packages.debian_suite)
                        return -ENOMEM;
        }
        r = own_program_path("isol8-deb-unpack", &path);
        if (r < 0)
                return r;
        r = read_full_file(path, ret_script, 1 << 20, NULL);
        return r == -ENOENT || r == -EACCES ? -ENOENT : r;
}

static void on_build_sandbox(Sandbox *sb, SandboxEvent ev, int value, void *userdata) {
        /* Between the run and the copy: nothing to do (a death shows as a failed copy). */
}

static void on_build_pool_sandbox(Sandbox *sb, int error, void *userdata) {
        ImageBuild *b = userdata;
        ExecutionCallbacks cb = { .on_done = on_build_done };
        int r;

        b->pool_req = NULL;
        if (error < 0) {
                build_finish(b, error, OUTCOME_OK, NULL, NULL);
                return;
        }
        b->sb = sb;
        pool_forget(b->m->pool, sb);
        b->m->provider.ops->set_handler(sb, on_build_sandbox, b);
        r = execution_start(&b->m->exec, TAKE_PTR(b->req), sb, &cb, b, &b->exec);
        if (r < 0)
                build_finish(b, r, OUTCOME_OK, NULL, NULL);
}

static void on_prebuilt(int error, Outcome outcome, const char *message, const Image *img, void *userdata) {
        /* build_finish() logged a failure; a success is logged where the image is added. */
}

static bool same_packages(char *const *a, char *const *b) {
        if (strv_length(a) != strv_length(b))
                return false;
        for (char *const *p = a; p && *p; p++)
                if (!strv_contains(b, *p))
                        return false;
        return true;
}

void images_prebuild(Manager *m) {
        for (int rt = 0; rt < _RUNTIME_MAX; rt++) {
                _cleanup_free_ char *msg = NULL;
                char name[32];
                Image *img;
                int r;

                if (!m->config.dependencies[rt] || !*m->config.dependencies[rt])
                        continue;
                if (!image_target((RuntimeId) rt) || rt == RUNTIME_AGENT) {
                        log_warning("config: dependencies.%s: images are built for python, node, bun, deno and bash; ignored",
                                    runtime_to_string((RuntimeId) rt));
                        continue;
                }
                snprintf(name, sizeof(name), "%s-custom", runtime_to_string((RuntimeId) rt));
                img = image_find(m, name);
                if (img && same_packages(img->packages, m->config.dependencies[rt]))
                        continue;
                if (img) {
                        log_info("images: %s holds other packages than dependencies.%s: built again", name,
                                 runtime_to_string((RuntimeId) rt));
                        image_drop(m, img, "config");
                }
                r = manager_image_build(m, name, runtime_to_string((RuntimeId) rt), m->config.dependencies[rt], "config",
                                        on_prebuilt, NULL, NULL, &msg);
                if (r < 0)
                        log_error_errno(r, "images: cannot build %s: %m", name);
                else if (r > 0)
                        log_error("images: cannot build %s: %s", name, msg ?: outcome_message((Outcome) r));
        }
}

int manager_image_build(Manager *m, const char *name, const char *runtime, char *const *packages, const char *via,
                        ImageBuildFn cb, void *userdata, ImageBuild **ret, char **ret_message) {
        _cleanup_(exec_request_freep) ExecRequest *req = NULL;
        _cleanup_free_ char *deb_unpack = NULL;
        ImageBuild *b;
        Sandbox *sb = NULL;
        size_t i = 0;
        int r, rt;

        *ret_message = NULL;
        if (m->shutting_down)
                return OUTCOME_SHUTTING_DOWN;
        if (!name_ok(name))
                return errorf(ret_message, "image name: 1 to %d of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
                              IMAGE_NAME_MAX), OUTCOME_INVALID;
        rt = runtime ? runtime_from_string(runtime) : -EINVAL;
        if (rt < 0 || !image_target((RuntimeId) rt) || rt == RUNTIME_AGENT)
                return errorf(ret_message, "runtime: images are built for python, node, bun, deno and bash"), OUTCOME_INVALID;
        if (!packages || !*packages)
                return errorf(ret_message, "packages: an image needs at least one package"), OUTCOME_INVALID;
        if (image_find(m, name))
                return OUTCOME_IMAGE_EXISTS;
        for (ImageBuild *o = m->builds; o; o = o->next)
                if (streq(o->name, name))
                        return OUTCOME_IMAGE_EXISTS;

        if (rt == RUNTIME_BASH) {
                r = debian_prepare(m, &deb_unpack);
                if (r == -ENOENT)
                        return errorf(ret_message, "runtime: bash images need isol8-deb-unpack, which is not installed"), OUTCOME_INVALID;
                if (r < 0)
                        return r;
        }
        r = exec_request_new(&m->policy, &req);
        if (r < 0)
                return r;
        if (exec_request_set_runtime(req, &m->policy, runtime, ret_message) < 0)
                return OUTCOME_INVALID;
        req->cmd = strdup("true");
        if (!req->cmd)
                return -ENOMEM;
        /* bash takes no installPackages from requests: its packages are added past that check. */
        if (exec_request_finish(req, &m->policy, ret_message) < 0)
                return OUTCOME_INVALID;
        if (rt == RUNTIME_BASH) {
                char *host = NULL;
                r = host_packages(&host);
                if (r >= 0)
                        r = exec_request_add_file(req, DEB_HOST_PACKAGES_PATH, host, strlen(host), ret_message);
                if (r >= 0) {
                        size_t n = strlen(deb_unpack);
                        r = exec_request_add_file(req, DEB_UNPACK_PATH, TAKE_PTR(deb_unpack), n, ret_message);
                }
                if (r < 0)
                        return r == -EINVAL ? OUTCOME_INVALID : r;
        }
        for (char *const *p = packages; *p; p++, i++) {
                r = exec_request_add_package(req, *p, i, ret_message);
                if (r == -EINVAL) {
                        /* the request's words, the operator's field */
                        _cleanup_free_ char *msg = *ret_message;
                        *ret_message = NULL;
                        (void) errorf(ret_message, "packages%s", msg && strchr(msg, '[') ? strchr(msg, '[') : ": not valid");
                        return OUTCOME_INVALID;
                }
                if (r < 0)
                        return r;
        }
        /* The operator's build, under the images' limits rather than a request's. */
        req->limits.timeout_ms = m->config.packages_install_timeout_ms + 10000;
        req->limits.memory_bytes = m->config.images_build_memory;
        req->limits.sandbox_bytes = m->config.images_max_size;
        req->limits.tmp_bytes = m->config.images_max_size;      /* deno's cache and npm's are in /tmp */
        req->limits.network = NETWORK_NONE;

        b = calloc(1, sizeof(ImageBuild));
        if (!b)
                return -ENOMEM;
        b->m = m;
        b->runtime = (RuntimeId) rt;
        b->name = strdup(name);
        b->via = strdup(via ?: "?");
        for (char **p = req->packages; p && *p; p++)
                if (strv_push(&b->packages, strdup(*p)) < 0)
                        break;
        b->cb = cb;
        b->userdata = userdata;
        b->req = TAKE_PTR(req);
        b->next = m->builds;
        m->builds = b;
        if (!b->name || !b->via || strv_length(b->packages) != strv_length(b->req->packages)) {
                build_free(b);
                return -ENOMEM;
        }
        log_info("images: building %s for %s with %zu package(s) (over %s)", name, runtime, strv_length(b->packages), b->via);
        r = pool_acquire(m->pool, on_build_pool_sandbox, b, &sb, &b->pool_req);
        if (r < 0) {
                build_free(b);
                return r;
        }
        /* Set before a ready sandbox starts it: the callback may come (and clear it) at once. */
        if (ret)
                *ret = b;
        if (r > 0)
                on_build_pool_sandbox(sb, 0, b);
        return 0;
}
