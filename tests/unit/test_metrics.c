/* placeholder: replaced by the real suite. */
#include "suites.h"

Suite *suite_metrics(void)
{
    return suite_create("metrics");
}
