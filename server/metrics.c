/* placeholder: replaced by the Prometheus metrics registry. */
int metrics_placeholder_(void);
int metrics_placeholder_(void)
{
    return 0;
}
