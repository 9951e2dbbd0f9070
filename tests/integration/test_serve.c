/* placeholder: replaced by the real suite. */
#include "suites.h"

Suite *suite_serve(void)
{
    return suite_create("serve");
}
