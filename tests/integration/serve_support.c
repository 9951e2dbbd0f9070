/* placeholder: replaced by the daemon test harness. */
int serve_support_placeholder_(void);
int serve_support_placeholder_(void)
{
    return 0;
}
