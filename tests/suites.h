/* suites: one constructor per Check suite; the list itself is suites.def. */
#ifndef INFERD_TEST_SUITES_H
#define INFERD_TEST_SUITES_H
#include <check.h>
#include <stdbool.h>
#define SUITE(name) Suite *suite_##name(void);
#include "suites.def"
#undef SUITE
#endif
