/* SPDX-License-Identifier: MIT */
#pragma once

/* The client commands of the isol8 program: run, login, logout, session, health. */
int cli_run(int argc, char **argv);
int cli_login(int argc, char **argv);
int cli_logout(int argc, char **argv);
int cli_session(int argc, char **argv);
int cli_health(int argc, char **argv);
