/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/cli.h"
#include "client/local.h"
#include "isol8/isol8.h"
#include "sandbox/runtime.h"
#include "shared/crypto.h"
#include "shared/json-util.h"
#include "shared/size.h"
#include "shared/util.h"

static char *credentials_path(void) {
        char *p;
        const char *home = getenv("HOME");
        if (asprintf(&p, "%s/.isol8/credentials.json", home ?: "/root") < 0)
                return NULL;
        return p;
}

static json_object *credentials_load(void) {
        _cleanup_free_ char *path = credentials_path(), *text = NULL;
        json_object *o = NULL;
        size_t size;

        if (path && read_full_file(path, &text, 1 << 20, &size) >= 0 && json_parse_limited(text, size, 16, &o) >= 0 &&
            json_object_is_type(o, json_type_object))
                return o;
        json_object_put(o);
        return json_object_new_object();
}

static int credentials_save(json_object *o) {
        _cleanup_free_ char *path = credentials_path(), *dir = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *text;
        int r;

        if (!path)
                return -ENOMEM;
        dir = strndup(path, strrchr(path, '/') - path);
        if (!dir || asprintf(&tmp, "%s.tmp", path) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        (void) chmod(dir, 0700);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = loop_write(fd, text, strlen(text));
        if (r >= 0)
                r = loop_write(fd, "\n", 1);
        if (r >= 0 && fchmod(fd, 0600) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        return r;
}

static char *stored_token(const char *host) {
        _cleanup_json_ json_object *o = credentials_load();
        json_object *hosts, *entry;
        const char *t;
        if (json_get_object(o, "hosts", &hosts) < 0 || json_get_object(hosts, host, &entry) < 0 || json_get_string(entry, "token", &t) < 0)
                return NULL;
        return strdup(t);
}

static char *resolve_key(const char *flag, const char *host) {
        const char *env = getenv("ISOL8_API_KEY");
        if (flag)
                return strdup(flag);
        if (!isempty(env))
                return strdup(env);
        return host ? stored_token(host) : NULL;
}

static const char *guess_runtime(const char *file) {
        static const struct { const char *ext, *runtime; } map[] = {
                { ".py", "python" }, { ".js", "node" }, { ".mjs", "node" }, { ".cjs", "node" },
                { ".ts", "bun" }, { ".tsx", "bun" }, { ".sh", "bash" }, { ".bash", "bash" },
        };
        const char *dot = file ? strrchr(file, '.') : NULL;
        for (size_t i = 0; dot && i < ELEMENTSOF(map); i++)
                if (streq(dot, map[i].ext))
                        return map[i].runtime;
        return NULL;
}

static char *read_all_fd(int fd, size_t max) {
        Buffer b = {};
        char buf[65536];
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
                if (b.size + (size_t) n > max || buffer_append(&b, buf, (size_t) n) < 0) {
                        buffer_done(&b);
                        return NULL;
                }
        }
        return buffer_steal_string(&b);
}

typedef struct RunOutput {
        FILE *out;
} RunOutput;

static void on_event(const char *type, const char *data, const char *phase, void *userdata) {
        RunOutput *o = userdata;
        if (streq(type, "stdout")) {
                fputs(data, o->out);
                fflush(o->out);
        } else if (streq(type, "stderr")) {
                fputs(data, stderr);
                fflush(stderr);
        } else if (streq(type, "error"))
                fprintf(stderr, "isol8: %s\n", data);
}

static void run_help(void) {
        printf("isol8 run [FILE] [OPTIONS]   Run code in a sandbox (a server with --host, else locally as root)\n\n"
               "  -e, --eval CODE        Code to run (else FILE, else standard input)\n"
               "      --cmd CMD          A shell command (bash -c)\n"
               "  -r, --runtime NAME     python, node, bun, deno, bash, agent (guessed from FILE's extension)\n"
               "      --host URL         isol8 server (else run locally)\n"
               "      --key KEY          API key (else $ISOL8_API_KEY, else the stored login for --host)\n"
               "      --no-stream        Wait for the whole result instead of streaming\n"
               "      --timeout MS       Wall-clock limit\n"
               "      --memory SIZE      Memory limit (e.g. 256m)\n"
               "      --cpu N            CPU limit (fraction of CPUs)\n"
               "      --net MODE         none, host or filtered (where the server allows them)\n"
               "      --secret K=V       A secret environment variable (masked in output); repeatable\n"
               "      --stdin DATA       Standard input for the program\n"
               "      --persistent       Keep the sandbox as a session (id printed on stderr)\n"
               "      --session-id ID    Use this session\n"
               "      --out FILE         Write the program's stdout to FILE\n\n"
               "The exit status is the program's.\n");
}

int cli_run(int argc, char **argv) {
        enum { A_CMD = 0x100, A_HOST, A_KEY, A_NOSTREAM, A_TIMEOUT, A_MEMORY, A_CPU, A_NET, A_SECRET, A_STDIN, A_PERSISTENT,
               A_SESSION, A_OUT };
        static const struct option options[] = {
                { "eval", required_argument, NULL, 'e' }, { "cmd", required_argument, NULL, A_CMD },
                { "runtime", required_argument, NULL, 'r' }, { "host", required_argument, NULL, A_HOST },
                { "key", required_argument, NULL, A_KEY }, { "no-stream", no_argument, NULL, A_NOSTREAM },
                { "timeout", required_argument, NULL, A_TIMEOUT }, { "memory", required_argument, NULL, A_MEMORY },
                { "cpu", required_argument, NULL, A_CPU }, { "net", required_argument, NULL, A_NET },
                { "secret", required_argument, NULL, A_SECRET }, { "stdin", required_argument, NULL, A_STDIN },
                { "persistent", no_argument, NULL, A_PERSISTENT }, { "session-id", required_argument, NULL, A_SESSION },
                { "out", required_argument, NULL, A_OUT }, { "help", no_argument, NULL, 'h' }, {}
        };
        const char *code = NULL, *cmd = NULL, *runtime = NULL, *host = NULL, *key_flag = NULL, *stdin_data = NULL;
        const char *memory = NULL, *net = NULL, *session = NULL, *out_path = NULL;
        _cleanup_free_ char *file_code = NULL, *key = NULL, *stdin_read = NULL, *session_buf = NULL;
        _cleanup_json_ json_object *env = json_object_new_object(), *req = json_object_new_object(), *opt = json_object_new_object();
        _cleanup_json_ json_object *secrets = json_object_new_object();
        bool stream = true, persistent = false, interactive = false;
        double cpu = 0;
        uint64_t timeout = 0, u;
        RunOutput ro = { .out = stdout };
        int c, r, exit_code = 1;

        optind = 1;
        while ((c = getopt_long(argc, argv, "e:r:h", options, NULL)) >= 0)
                switch (c) {
                case 'e': code = optarg; break;
                case A_CMD: cmd = optarg; break;
                case 'r': runtime = optarg; break;
                case A_HOST: host = optarg; break;
                case A_KEY: key_flag = optarg; break;
                case A_NOSTREAM: stream = false; break;
                case A_TIMEOUT:
                        if (safe_atou64(optarg, &timeout) < 0 || timeout == 0) {
                                fprintf(stderr, "isol8 run: invalid --timeout: %s\n", optarg);
                                return 2;
                        }
                        break;
                case A_MEMORY:
                        if (parse_size(optarg, &u) < 0) {
                                fprintf(stderr, "isol8 run: invalid --memory: %s\n", optarg);
                                return 2;
                        }
                        memory = optarg;
                        break;
                case A_CPU: cpu = atof(optarg); break;
                case A_NET: net = optarg; break;
                case A_SECRET: {
                        const char *eq = strchr(optarg, '=');
                        if (!eq || eq == optarg) {
                                fprintf(stderr, "isol8 run: --secret wants KEY=VALUE\n");
                                return 2;
                        }
                        _cleanup_free_ char *k = strndup(optarg, (size_t) (eq - optarg));
                        json_add(secrets, k, json_object_new_string(eq + 1));
                        break;
                }
                case A_STDIN: stdin_data = optarg; break;
                case A_PERSISTENT: persistent = true; break;
                case A_SESSION: session = optarg; break;
                case A_OUT: out_path = optarg; break;
                case 'h': run_help(); return 0;
                default:
                        fprintf(stderr, "isol8 run: see isol8 run --help\n");
                        return 2;
                }
        if (optind < argc) {
                const char *file = argv[optind];
                if (read_full_file(file, &file_code, 64 << 20, NULL) < 0) {
                        fprintf(stderr, "isol8 run: cannot read %s: %m\n", file);
                        return 1;
                }
                code = file_code;
                if (!runtime)
                        runtime = guess_runtime(file);
        }
        if (!code && !cmd) {
                if (isatty(STDIN_FILENO)) {
                        fprintf(stderr, "isol8 run: no code: give a FILE, -e CODE, --cmd CMD, or pipe it in\n");
                        return 2;
                }
                stdin_read = read_all_fd(STDIN_FILENO, 64 << 20);
                code = stdin_read;
        } else if (!stdin_data && stream)
                interactive = true;   /* our stdin (a terminal or a pipe) goes to the program as it comes */
        if (!runtime && !cmd) {
                fprintf(stderr, "isol8 run: cannot tell the runtime: use -r python|node|bun|deno|bash\n");
                return 2;
        }
        if (code)
                json_add(req, "code", json_object_new_string(code));
        if (cmd)
                json_add(req, "cmd", json_object_new_string(cmd));
        if (runtime)
                json_add(req, "runtime", json_object_new_string(runtime));
        if (timeout)
                json_add(req, "timeoutMs", json_object_new_int64((int64_t) timeout));
        if (stdin_data)
                json_add(req, "stdin", json_object_new_string(stdin_data));
        if (memory)
                json_add(opt, "memoryLimit", json_object_new_string(memory));
        if (cpu > 0)
                json_add(opt, "cpuLimit", json_object_new_double(cpu));
        if (net)
                json_add(opt, "network", json_object_new_string(net));
        if (json_object_object_length(secrets) > 0)
                json_add(opt, "secrets", json_object_get(secrets));
        (void) env;

        _cleanup_json_ json_object *envelope = json_object_new_object();
        json_add(envelope, "request", json_object_get(req));
        json_add(envelope, "options", json_object_get(opt));
        if (persistent && !session) {
                char id[37];
                if (uuid4(id) < 0)
                        return 1;
                session = session_buf = strdup(id);
        }
        if (session) {
                json_add(envelope, "sessionId", json_object_new_string(session));
                fprintf(stderr, "isol8: session %s\n", session);
        }
        if (out_path) {
                ro.out = fopen(out_path, "we");
                if (!ro.out) {
                        fprintf(stderr, "isol8 run: cannot write %s: %m\n", out_path);
                        return 1;
                }
        }

        if (!host) {
                if (session) {
                        fprintf(stderr, "isol8 run: sessions need a server (--host)\n");
                        return 2;
                }
                r = local_run(json_to_string(envelope), ro.out, interactive ? STDIN_FILENO : -1, &exit_code);
                if (ro.out != stdout)
                        fclose(ro.out);
                return r < 0 ? 1 : exit_code;
        }

        key = resolve_key(key_flag, host);
        isol8_client *client = NULL;
        r = isol8_client_new(&client, host, key);
        if (r < 0) {
                fprintf(stderr, "isol8 run: %s\n", strerror(-r));
                return 1;
        }
        if (stream) {
                isol8_stream_callbacks cb = { .on_event = on_event, .stdin_fd = interactive ? STDIN_FILENO : -1 };
                r = isol8_execute_stream(client, json_to_string(envelope), &cb, &ro, &exit_code);
        } else {
                isol8_result *res = NULL;
                r = isol8_execute(client, json_to_string(envelope), &res);
                if (r >= 0) {
                        fputs(res->stdout_text, ro.out);
                        if (*res->stdout_text)
                                fputc('\n', ro.out);
                        fputs(res->stderr_text, stderr);
                        if (*res->stderr_text)
                                fputc('\n', stderr);
                        exit_code = res->exit_code;
                        isol8_result_free(res);
                }
        }
        if (r < 0) {
                fprintf(stderr, "isol8 run: %s\n", isol8_client_error(client));
                exit_code = 1;
        }
        isol8_client_free(client);
        if (ro.out != stdout)
                fclose(ro.out);
        return exit_code < 0 ? 1 : exit_code;
}

int cli_login(int argc, char **argv) {
        enum { A_HOST = 0x100, A_KEY, A_NAME, A_TTL };
        static const struct option options[] = {
                { "host", required_argument, NULL, A_HOST }, { "key", required_argument, NULL, A_KEY },
                { "name", required_argument, NULL, A_NAME }, { "ttl", required_argument, NULL, A_TTL }, {}
        };
        const char *host = NULL, *key = NULL, *name = NULL;
        uint64_t ttl = 0;
        _cleanup_free_ char *token = NULL, *expires = NULL, *key_id = NULL;
        _cleanup_json_ json_object *creds = NULL;
        json_object *hosts, *entry;
        isol8_client *client = NULL;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case A_HOST: host = optarg; break;
                case A_KEY: key = optarg; break;
                case A_NAME: name = optarg; break;
                case A_TTL:
                        if (safe_atou64(optarg, &ttl) < 0) {
                                fprintf(stderr, "isol8 login: invalid --ttl (milliseconds): %s\n", optarg);
                                return 2;
                        }
                        break;
                default: return 2;
                }
        if (!key)
                key = getenv("ISOL8_API_KEY");
        if (!host || !key) {
                fprintf(stderr, "isol8 login: needs --host URL and --key MASTER_KEY\n");
                return 2;
        }
        r = isol8_client_new(&client, host, key);
        if (r >= 0)
                r = isol8_login(client, name ?: "isol8-cli", ttl, &token, &expires, &key_id);
        if (r < 0) {
                fprintf(stderr, "isol8 login: %s\n", client ? isol8_client_error(client) : strerror(-r));
                isol8_client_free(client);
                return 1;
        }
        isol8_client_free(client);
        creds = credentials_load();
        if (json_get_object(creds, "hosts", &hosts) < 0) {
                hosts = json_object_new_object();
                json_add(creds, "hosts", hosts);
        }
        entry = json_object_new_object();
        json_add(entry, "token", json_object_new_string(token));
        json_add(entry, "expiresAt", json_object_new_string(expires));
        json_add(entry, "keyId", json_object_new_string(key_id));
        json_add(hosts, host, entry);
        r = credentials_save(creds);
        if (r < 0) {
                fprintf(stderr, "isol8 login: cannot store the credentials: %s\n", strerror(-r));
                return 1;
        }
        printf("Logged in to %s (key %s, valid until %s).\n", host, key_id, expires);
        return 0;
}

int cli_logout(int argc, char **argv) {
        static const struct option options[] = { { "host", required_argument, NULL, 'H' }, {} };
        _cleanup_json_ json_object *creds = credentials_load();
        const char *host = NULL;
        json_object *hosts;
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                if (c == 'H')
                        host = optarg;
                else
                        return 2;
        if (json_get_object(creds, "hosts", &hosts) >= 0) {
                if (host)
                        json_object_object_del(hosts, host);
                else
                        json_object_object_add(creds, "hosts", json_object_new_object());
        }
        if (credentials_save(creds) < 0) {
                fprintf(stderr, "isol8 logout: cannot write the credentials file\n");
                return 1;
        }
        printf(host ? "Logged out of %s.\n" : "Logged out of every server.%s\n", host ?: "");
        return 0;
}

static isol8_client *connect_client(const char *host, const char *key_flag) {
        _cleanup_free_ char *key = resolve_key(key_flag, host);
        isol8_client *client = NULL;
        if (!host) {
                fprintf(stderr, "isol8: needs --host URL\n");
                return NULL;
        }
        if (isol8_client_new(&client, host, key) < 0)
                return NULL;
        return client;
}

int cli_session(int argc, char **argv) {
        enum { A_HOST = 0x100, A_KEY };
        static const struct option options[] = { { "host", required_argument, NULL, A_HOST }, { "key", required_argument, NULL, A_KEY }, {} };
        const char *host = NULL, *key = NULL;
        isol8_client *client;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case A_HOST: host = optarg; break;
                case A_KEY: key = optarg; break;
                default: return 2;
                }
        if (optind >= argc || (!streq(argv[optind], "list") && !streq(argv[optind], "stop"))) {
                fprintf(stderr, "isol8 session: list | stop ID\n");
                return 2;
        }
        client = connect_client(host, key);
        if (!client)
                return 1;
        if (streq(argv[optind], "list")) {
                _cleanup_free_ char *json = NULL;
                _cleanup_json_ json_object *o = NULL;
                json_object *a;
                r = isol8_sessions(client, &json);
                if (r >= 0 && json_parse_limited(json, strlen(json), 16, &o) >= 0 && json_get_array(o, "sessions", &a) >= 0)
                        for (size_t i = 0; i < json_object_array_length(a); i++) {
                                json_object *s = json_object_array_get_idx(a, i);
                                const char *id = "", *last = "";
                                bool active = false;
                                (void) json_get_string(s, "id", &id);
                                (void) json_get_string(s, "lastAccessedAt", &last);
                                (void) json_get_bool(s, "isActive", &active);
                                printf("%s\t%s\t%s\n", id, active ? "active" : "idle", last);
                        }
        } else if (optind + 1 < argc) {
                r = isol8_session_delete(client, argv[optind + 1]);
                if (r >= 0)
                        printf("Stopped session %s.\n", argv[optind + 1]);
        } else {
                fprintf(stderr, "isol8 session stop: needs an ID\n");
                isol8_client_free(client);
                return 2;
        }
        if (r < 0)
                fprintf(stderr, "isol8 session: %s\n", isol8_client_error(client));
        isol8_client_free(client);
        return r < 0 ? 1 : 0;
}

int cli_health(int argc, char **argv) {
        static const struct option options[] = { { "host", required_argument, NULL, 'H' }, {} };
        _cleanup_free_ char *version = NULL;
        const char *host = NULL;
        isol8_client *client;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                if (c == 'H')
                        host = optarg;
                else
                        return 2;
        client = connect_client(host ?: "http://localhost:3000", NULL);
        if (!client)
                return 1;
        r = isol8_health(client, &version);
        if (r < 0)
                fprintf(stderr, "isol8 health: %s\n", isol8_client_error(client));
        else
                printf("ok: isol8 server %s at %s\n", version, host ?: "http://localhost:3000");
        isol8_client_free(client);
        return r < 0 ? 1 : 0;
}
