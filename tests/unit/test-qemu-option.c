/*
 * util/qemu-option.c: option strings as QEMU writes them.
 */
#include "qemu/osdep.h"
#include "qemu/option.h"

static GHashTable *parse_ok(const char *str, const char *implied)
{
    g_autoptr(GError) err = NULL;
    GHashTable *opts = qemu_opts_parse(str, implied, &err);

    g_assert_no_error(err);
    g_assert_nonnull(opts);
    return opts;
}

static void parse_fails(const char *str, const char *implied,
                        const char *text)
{
    g_autoptr(GError) err = NULL;
    GHashTable *opts = qemu_opts_parse(str, implied, &err);

    g_assert_null(opts);
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, text));
}

static void test_implied_key(void)
{
    g_autoptr(GHashTable) o = parse_ok("libtpms,id=tpm0,nvram=d0", "type");

    g_assert_cmpuint(g_hash_table_size(o), ==, 3);
    g_assert_cmpstr(qemu_opt_get(o, "type"), ==, "libtpms");
    g_assert_cmpstr(qemu_opt_get(o, "id"), ==, "tpm0");
    g_assert_cmpstr(qemu_opt_get(o, "nvram"), ==, "d0");
}

static void test_implied_key_given_explicitly(void)
{
    g_autoptr(GHashTable) o = parse_ok("type=null,id=t", "type");

    g_assert_cmpstr(qemu_opt_get(o, "type"), ==, "null");
}

static void test_no_implied_key(void)
{
    g_autoptr(GHashTable) o = parse_ok("file=a.qcow2,if=none,id=d0", NULL);

    g_assert_cmpstr(qemu_opt_get(o, "file"), ==, "a.qcow2");
    g_assert_cmpstr(qemu_opt_get(o, "if"), ==, "none");
    parse_fails("a.qcow2,id=d0", NULL, "'a.qcow2' has no value");
}

static void test_comma_escape(void)
{
    g_autoptr(GHashTable) o = parse_ok("file=a,,b,,,,c.qcow2,id=d0", NULL);
    g_autoptr(GHashTable) o2 = parse_ok("x,,y,id=z", "type");
    g_autofree char *esc = qemu_opt_escape("a,b,,c");

    g_assert_cmpstr(qemu_opt_get(o, "file"), ==, "a,b,,c.qcow2");
    g_assert_cmpstr(qemu_opt_get(o, "id"), ==, "d0");
    g_assert_cmpstr(qemu_opt_get(o2, "type"), ==, "x,y");
    g_assert_cmpstr(esc, ==, "a,,b,,,,c");
}

static void test_value_with_equals(void)
{
    g_autoptr(GHashTable) o = parse_ok("secret,id=s,data=YWJj==", "qom-type");

    g_assert_cmpstr(qemu_opt_get(o, "data"), ==, "YWJj==");
}

static void test_empty_values_and_elements(void)
{
    g_autoptr(GHashTable) o = parse_ok("null,id=t,", "type");
    g_autoptr(GHashTable) e = parse_ok("", NULL);
    g_autoptr(GHashTable) v = parse_ok("file=,id=x", NULL);

    g_assert_cmpuint(g_hash_table_size(o), ==, 2);
    g_assert_cmpuint(g_hash_table_size(e), ==, 0);
    g_assert_cmpstr(qemu_opt_get(v, "file"), ==, "");
}

static void test_errors(void)
{
    parse_fails("null,id=a,id=b", "type", "'id' is given twice");
    parse_fails("null,id", "type", "'id' has no value");
    parse_fails("null,=x", "type", "empty parameter name");
    parse_fails(",id=x", "type", "the type is missing");
}

static void test_bool(void)
{
    g_autoptr(GHashTable) o =
        parse_ok("a=on,b=off,c=yes,d=no,e=true,f=false,g=maybe", NULL);
    static const struct {
        const char *key;
        bool want;
    } cases[] = {
        { "a", true }, { "b", false }, { "c", true },
        { "d", false }, { "e", true }, { "f", false },
    };
    g_autoptr(GError) err = NULL;
    bool v;

    for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_assert_true(qemu_opt_get_bool(o, cases[i].key, !cases[i].want, &v,
                                        NULL));
        g_assert_cmpint(v, ==, cases[i].want);
    }
    g_assert_true(qemu_opt_get_bool(o, "absent", true, &v, NULL));
    g_assert_true(v);
    g_assert_false(qemu_opt_get_bool(o, "g", false, &v, &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, "'g'"));
}

static void test_number(void)
{
    g_autoptr(GHashTable) o =
        parse_ok("irq=5,hex=0x10,big=99,neg=-1,junk=5x,empty=", NULL);
    uint64_t v;

    g_assert_true(qemu_opt_get_number(o, "irq", 0, 0, 23, &v, NULL));
    g_assert_cmpuint(v, ==, 5);
    g_assert_true(qemu_opt_get_number(o, "hex", 0, 0, 23, &v, NULL));
    g_assert_cmpuint(v, ==, 16);
    g_assert_true(qemu_opt_get_number(o, "absent", 7, 0, 23, &v, NULL));
    g_assert_cmpuint(v, ==, 7);
    g_assert_false(qemu_opt_get_number(o, "big", 0, 0, 23, &v, NULL));
    g_assert_false(qemu_opt_get_number(o, "neg", 0, 0, 23, &v, NULL));
    g_assert_false(qemu_opt_get_number(o, "junk", 0, 0, 23, &v, NULL));
    g_assert_false(qemu_opt_get_number(o, "empty", 0, 0, 23, &v, NULL));
}

/* A table of names only, as the old key lists were. */
static const QemuOptDesc names_desc[] = {
    { .name = "type", .type = QEMU_OPT_STRING, .implied = true },
    { .name = "id", .type = QEMU_OPT_STRING },
    { .name = "nvram", .type = QEMU_OPT_STRING },
    QEMU_OPT_DESC_END
};

static void test_validate_names(void)
{
    g_autoptr(GHashTable) good = parse_ok("libtpms,id=t,nvram=d", "type");
    g_autoptr(GHashTable) bad = parse_ok("libtpms,id=t,zzz=1,aaa=2", "type");
    g_autoptr(GError) err = NULL;

    g_assert_true(qemu_opts_validate(good, names_desc, "-tpmdev", NULL));
    g_assert_null(qemu_opts_find_unknown(good, names_desc));
    g_assert_false(qemu_opts_validate(bad, names_desc, "-tpmdev libtpms",
                                      &err));
    /* The first bad key in sorted order, so messages are stable. */
    g_assert_cmpstr(err->message, ==,
                    "'aaa' is not a parameter of -tpmdev libtpms "
                    "(expected: type, id, nvram)");
    g_assert_cmpstr(qemu_opts_find_unknown(bad, names_desc), ==, "aaa");
}

static const QemuOptDesc flags_desc[] = {
    { .name = "path", .type = QEMU_OPT_STRING, .implied = true },
    { .name = "server", .type = QEMU_OPT_BOOL },
    { .name = "wait", .type = QEMU_OPT_BOOL },
    { .name = "name", .type = QEMU_OPT_STRING },
    QEMU_OPT_DESC_END
};

static GHashTable *parse_flags_ok(const char *str)
{
    g_autoptr(GError) err = NULL;
    GHashTable *opts = qemu_opts_parse_flags(str, flags_desc, &err);

    g_assert_no_error(err);
    g_assert_nonnull(opts);
    return opts;
}

static void test_parse_flags(void)
{
    g_autoptr(GHashTable) o = parse_flags_ok("/tmp/q.sock,server,nowait");
    g_autoptr(GHashTable) eq = parse_flags_ok("/tmp/a=b,,c,wait=on,noserver");
    g_autoptr(GHashTable) word = parse_flags_ok("p,bogus,noname");
    g_autoptr(GError) err = NULL;

    g_assert_cmpstr(qemu_opt_get(o, "path"), ==, "/tmp/q.sock");
    g_assert_cmpstr(qemu_opt_get(o, "server"), ==, "on");
    g_assert_cmpstr(qemu_opt_get(o, "wait"), ==, "off");
    /* The first element is the path whatever it holds. */
    g_assert_cmpstr(qemu_opt_get(eq, "path"), ==, "/tmp/a=b,c");
    g_assert_cmpstr(qemu_opt_get(eq, "wait"), ==, "on");
    g_assert_cmpstr(qemu_opt_get(eq, "server"), ==, "off");
    /* Other words are KEY=on, for the table to name. */
    g_assert_cmpstr(qemu_opt_get(word, "bogus"), ==, "on");
    g_assert_cmpstr(qemu_opt_get(word, "noname"), ==, "on");
    g_assert_cmpstr(qemu_opts_find_unknown(word, flags_desc), ==, "bogus");
    g_assert_null(qemu_opts_parse_flags("p,server,server=off", flags_desc,
                                        &err));
    g_assert_cmpstr(err->message, ==, "parameter 'server' is given twice");
}

static const char *const test_formats[] = { "qcow2", "raw", NULL };
static const char *const test_modes[] = { "raw", "base64", "hex", NULL };

static const QemuOptDesc test_desc[] = {
    { .name = "type", .type = QEMU_OPT_STRING, .implied = true },
    {
        .name = "id", .type = QEMU_OPT_STRING, .value_name = "ID",
        .required = true, .help = "the id",
    },
    {
        .name = "nvram", .type = QEMU_OPT_STRING, .value_name = "DRIVE_ID",
        .required = true, .missing_hint = "the id of a -drive",
        .help = "the drive",
    },
    {
        .name = "format", .type = QEMU_OPT_STRING, .choices = test_formats,
        .def_value_str = "qcow2", .help = "the format",
    },
    {
        .name = "mode", .type = QEMU_OPT_STRING, .choices = test_modes,
    },
    {
        .name = "locking", .type = QEMU_OPT_BOOL, .def_value_str = "on",
        .help = "locks",
    },
    {
        .name = "irq", .type = QEMU_OPT_NUMBER, .min = 0, .max = 23,
        .def_value_str = "5", .help = "the pin",
    },
    QEMU_OPT_DESC_END
};

static void validate_fails(const char *str, const char *message)
{
    g_autoptr(GHashTable) o = parse_ok(str, "type");
    g_autoptr(GError) err = NULL;

    g_assert_false(qemu_opts_validate(o, test_desc, "-tpmdev t", &err));
    g_assert_error(err, QTPM_ERROR, QTPM_ERROR_INVALID);
    g_assert_cmpstr(err->message, ==, message);
}

static void test_validate_ok(void)
{
    g_autoptr(GHashTable) full =
        parse_ok("t,id=a,nvram=d,format=raw,mode=hex,locking=off,irq=0x17",
                 "type");
    g_autoptr(GHashTable) least = parse_ok("t,id=a,nvram=d", "type");

    g_assert_true(qemu_opts_validate(full, test_desc, "-tpmdev t", NULL));
    g_assert_true(qemu_opts_validate(least, test_desc, "-tpmdev t", NULL));
}

static void test_validate_errors(void)
{
    /* The first unknown key in sorted order, the table's keys in its order. */
    validate_fails("t,id=a,nvram=d,zzz=1,aaa=2",
                   "'aaa' is not a parameter of -tpmdev t (expected: type, id, "
                   "nvram, format, mode, locking, irq)");
    validate_fails("t,nvram=d", "parameter 'id' is missing");
    validate_fails("t,id=,nvram=d", "parameter 'id' is missing");
    validate_fails("t,id=a",
                   "parameter 'nvram' is missing (the id of a -drive)");
    validate_fails("t,id=a,nvram=d,format=vmdk",
                   "format 'vmdk' is not qcow2 or raw");
    validate_fails("t,id=a,nvram=d,mode=", "mode '' is not raw, base64 or hex");
    validate_fails("t,id=a,nvram=d,locking=maybe",
                   "parameter 'locking' expects 'on' or 'off', not 'maybe'");
    validate_fails("t,id=a,nvram=d,irq=24",
                   "parameter 'irq' is 24, outside 0..23");
    validate_fails("t,id=a,nvram=d,irq=five",
                   "parameter 'irq' expects a number, not 'five'");
}

static void test_check_names_and_values(void)
{
    g_autoptr(GHashTable) unknown = parse_ok("t,id=a,nvram=d,bogus=1", "type");
    g_autoptr(GHashTable) bad_value = parse_ok("t,id=a,format=x", "type");
    g_autoptr(GError) err = NULL;

    /* Names alone do not look at values, values alone not at names. */
    g_assert_true(qemu_opts_check_names(bad_value, test_desc, "-x", NULL));
    g_assert_true(qemu_opts_check_values(unknown, test_desc, NULL));
    g_assert_false(qemu_opts_check_values(bad_value, test_desc, &err));
    g_assert_cmpstr(err->message, ==,
                    "parameter 'nvram' is missing (the id of a -drive)");
    g_assert_nonnull(qemu_opt_desc_find(test_desc, "irq"));
    g_assert_null(qemu_opt_desc_find(test_desc, "bogus"));
}

static void test_desc_choices(void)
{
    g_autofree char *formats = qemu_opt_desc_choices(test_desc, "format", " ");
    g_autofree char *bools = qemu_opt_desc_choices(test_desc, "locking", "|");

    g_assert_cmpstr(formats, ==, "qcow2 raw");
    g_assert_cmpstr(bools, ==, "on|off");
    g_assert_null(qemu_opt_desc_choices(test_desc, "id", " "));
    g_assert_null(qemu_opt_desc_choices(test_desc, "bogus", " "));
}

static void test_print_synopsis(void)
{
    g_autoptr(GString) typed = g_string_new("t");
    g_autoptr(GString) bare = g_string_new(NULL);
    static const QemuOptDesc optional_first[] = {
        { .name = "format", .type = QEMU_OPT_STRING, .choices = test_formats },
        { .name = "file", .type = QEMU_OPT_STRING, .value_name = "PATH",
          .required = true },
        QEMU_OPT_DESC_END
    };

    qemu_opts_print_synopsis(typed, test_desc);
    g_assert_cmpstr(typed->str, ==,
                    "t,id=ID,nvram=DRIVE_ID[,format=qcow2|raw]"
                    "[,mode=raw|base64|hex][,locking=on|off][,irq=N]");
    qemu_opts_print_synopsis(bare, optional_first);
    g_assert_cmpstr(bare->str, ==, "[format=qcow2|raw],file=PATH");
}

static void test_print_help(void)
{
    g_autoptr(GString) out = g_string_new(NULL);

    qemu_opts_print_help(out, test_desc);
    g_assert_cmpstr(out->str, ==,
        "  id=ID                    the id (required)\n"
        "  nvram=DRIVE_ID           the drive (required)\n"
        "  format=qcow2|raw         the format (default: qcow2)\n"
        "  mode=raw|base64|hex\n"
        "  locking=on|off           locks (default: on)\n"
        "  irq=N                    the pin (0..23, default: 5)\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qemu-option/implied-key", test_implied_key);
    g_test_add_func("/qemu-option/implied-key-explicit",
                    test_implied_key_given_explicitly);
    g_test_add_func("/qemu-option/no-implied-key", test_no_implied_key);
    g_test_add_func("/qemu-option/comma-escape", test_comma_escape);
    g_test_add_func("/qemu-option/value-with-equals", test_value_with_equals);
    g_test_add_func("/qemu-option/empty", test_empty_values_and_elements);
    g_test_add_func("/qemu-option/errors", test_errors);
    g_test_add_func("/qemu-option/bool", test_bool);
    g_test_add_func("/qemu-option/number", test_number);
    g_test_add_func("/qemu-option/validate-names", test_validate_names);
    g_test_add_func("/qemu-option/parse-flags", test_parse_flags);
    g_test_add_func("/qemu-option/validate-ok", test_validate_ok);
    g_test_add_func("/qemu-option/validate-errors", test_validate_errors);
    g_test_add_func("/qemu-option/check-names-and-values",
                    test_check_names_and_values);
    g_test_add_func("/qemu-option/desc-choices", test_desc_choices);
    g_test_add_func("/qemu-option/print-synopsis", test_print_synopsis);
    g_test_add_func("/qemu-option/print-help", test_print_help);
    return g_test_run();
}
