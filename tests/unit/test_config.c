/* placeholder: replaced by the real suite. */
#include "suites.h"

Suite *suite_config(void)
{
    return suite_create("config");
}
