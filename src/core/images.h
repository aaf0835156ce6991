/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

#include "core/outcome.h"
#include "core/pool.h"
#include "sandbox/runtime.h"

typedef struct Manager Manager;

/* Runtime images: a read-only layer of packages for one runtime (python: a pip --user tree;
 * node and bun: a node_modules directory), built once by installing its packages in a sandbox
 * (the same engine, installers and filtered network as request.installPackages), kept in
 * images.directory (one directory per image: layer/ and image.json) and mounted read-only into
 * the sandboxes of the runs that use it. Each image in use has its own warm pool. */

typedef struct Image {
        char *name;
        RuntimeId runtime;
        char **packages;            /* as built: the specs that were installed */
        uint64_t created_usec;      /* CLOCK_REALTIME */
        uint64_t size_bytes;
        uint64_t n_files;
        char *layer;                /* <directory>/<name>/layer */
        char **env;                 /* what a run on it needs ("PYTHONPATH=..."), or NULL */
        Pool *pool;                 /* warm sandboxes with it, made on first use */
        struct Image *next;
} Image;

/* The package that holds pi, which runtime agent runs from a node image. */
#define AGENT_PACKAGE "@mariozechner/pi-coding-agent"
#define AGENT_CLI "/node_modules/" AGENT_PACKAGE "/dist/cli.js"
/* Whether runs of runtime may use an image built for image_runtime (agent runs on node images). */
bool image_serves(RuntimeId image_runtime, RuntimeId runtime);
/* Whether the image holds pi. */
bool image_has_agent(const Image *img);

/* Where an image of a runtime is mounted in its sandboxes, NULL when the runtime has none. */
const char *image_target(RuntimeId runtime);

/* At start-up: the images in images.directory (left-overs of builds or removals go). */
int images_load(Manager *m);
void images_free(Manager *m);

Image *image_find(Manager *m, const char *name);
/* The image of this runtime that holds every one of packages (the smallest such), or NULL. */
Image *image_match(Manager *m, RuntimeId runtime, char *const *packages);
/* Its warm pool, made on first use. */
int image_pool(Manager *m, Image *img, Pool **ret);

/* Builds an image. Returns < 0, an Outcome (with *ret_message for OUTCOME_INVALID), or 0 when
 * cb follows: with error < 0, an Outcome (OUTCOME_IMAGE_BUILD_FAILED with the installer's
 * output in message), or OUTCOME_OK and the image. via names the caller for the audit record. */
typedef struct ImageBuild ImageBuild;
typedef void (*ImageBuildFn)(int error, Outcome outcome, const char *message, const Image *img, void *userdata);
int manager_image_build(Manager *m, const char *name, const char *runtime, char *const *packages, const char *via,
                        ImageBuildFn cb, void *userdata, ImageBuild **ret, char **ret_message);
/* The caller goes away: the build goes on, its answer is dropped. */
void image_build_forget(ImageBuild *b);

/* At start-up: an image "<runtime>-custom" for each runtime of the configuration's
 * "dependencies" (upstream's key, what its `isol8 setup` bakes in), built in the background when
 * missing, rebuilt when its packages differ. */
void images_prebuild(Manager *m);

/* OUTCOME_OK, OUTCOME_IMAGE_NOT_FOUND or OUTCOME_IMAGE_IN_USE (runs hold its sandboxes). */
int manager_image_remove(Manager *m, const char *name, const char *via);
/* /cleanup with images: every image no run is using; returns how many went. */
unsigned manager_images_cleanup(Manager *m, const char *via);
