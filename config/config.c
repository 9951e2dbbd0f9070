/* placeholder: replaced by the YAML config loader. */
int config_placeholder_(void);
int config_placeholder_(void)
{
    return 0;
}
