/*
 * Unit tests for tools/swtpm-compat/swtpm-compat-opts.c and the pure part
 * of swtpm-compat-run.c: every documented option of the three front doors
 * maps onto the right qtpm or qtpm-img argument vector, and every other
 * one is refused with a sentence that names it.
 */
#include "qemu/osdep.h"

#include "../../tools/swtpm-compat/swtpm-compat-run.h"

/* Splits @cmdline at spaces (no argument of these tests holds one). */
static char **args(const char *cmdline)
{
    return g_strsplit(cmdline, " ", -1);
}

static char *socket_argv(const char *cmdline, const char *key_path)
{
    g_auto(GStrv) a = args(cmdline);
    SwtpmSocketOpts o;
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) q = NULL;
    g_autofree char *image = NULL;

    if (!swtpm_socket_parse(g_strv_length(a), a, &o, &err)) {
        g_test_message("%s: %s", cmdline, err->message);
        g_assert_not_reached();
    }
    image = swtpm_compat_image_path(o.state_dir, o.state_file, o.tpm2);
    q = swtpm_socket_qtpm_argv(&o, "qtpm", image, key_path);
    swtpm_socket_opts_clear(&o);
    return g_strjoinv(" ", q);
}

static void test_socket_libvirt(void)
{
    static const struct {
        const char *swtpm;
        const char *key_path;
        const char *qtpm;
    } cases[] = {
        /* libvirt 9.0, no encryption */
        { "swtpm socket --ctrl type=unixio,path=/run/s/1-vm-swtpm.sock,mode=0600 "
          "--tpmstate dir=/var/lib/libvirt/swtpm/U/tpm2,mode=0600 "
          "--log file=/var/log/swtpm/libvirt/qemu/vm-swtpm.log --terminate --tpm2",
          NULL,
          "qtpm -drive file=/var/lib/libvirt/swtpm/U/tpm2/tpm2-00.qcow2,if=none,"
          "id=drive0,format=qcow2 -tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/run/s/1-vm-swtpm.sock,"
          "mode=0600,terminate=on -D /var/log/swtpm/libvirt/qemu/vm-swtpm.log" },
        /* libvirt 9.0 with <encryption secret=...> */
        { "swtpm socket --ctrl type=unixio,path=/run/s.sock,mode=0600 "
          "--tpmstate dir=/d,mode=0600 --log file=/l --terminate --tpm2 "
          "--key pwdfd=24,mode=aes-256-cbc --migration-key pwdfd=25,mode=aes-256-cbc",
          "/proc/self/fd/3",
          "qtpm -drive file=/d/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-object secret,id=key0,file=/proc/self/fd/3,format=raw "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0,passphrase-secret=key0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/run/s.sock,mode=0600,"
          "terminate=on -D /l" },
        /* older libvirt: --daemon and --pid */
        { "swtpm socket --daemon --ctrl type=unixio,path=/s,mode=0600 "
          "--tpmstate dir=/d,mode=0600 --log file=/l --tpm2 --pid file=/run/vm.pid",
          NULL,
          "qtpm -drive file=/d/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/s,mode=0600 -D /l "
          "-pidfile /run/vm.pid -daemonize" },
        /* TPM 1.2 by default, as swtpm */
        { "swtpm socket --ctrl type=unixio,path=/s --tpmstate dir=/d", NULL,
          "qtpm -drive file=/d/tpm-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=1.2 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/s" },
        /* swtpm's man page example: TCP control and data channels */
        { "swtpm socket --tpmstate dir=/d --tpm2 --ctrl type=tcp,port=2322 "
          "--server type=tcp,port=2321,bindaddr=0.0.0.0", NULL,
          "qtpm -drive file=/d/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=tcp:127.0.0.1:2322,"
          "data=tcp:0.0.0.0:2321" },
        { "swtpm socket --tpmstate dir=/d --tpm2 --ctrl type=tcp,port=1,bindaddr=::1 "
          "--server type=unixio,path=/data.sock", NULL,
          "qtpm -drive file=/d/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=tcp:[::1]:1,data=unix:/data.sock" },
        /* uid=, gid=, backend-uri=file://, a raw key in hex, log fd and level */
        { "swtpm socket --tpm2 --ctrl type=unixio,path=/s,uid=107,gid=108 "
          "--tpmstate backend-uri=file:///img/a.qcow2 --key file=/k,format=hex "
          "--log fd=7,level=20", "/proc/self/fd/4",
          "qtpm -drive file=/img/a.qcow2,if=none,id=drive0,format=qcow2 "
          "-object secret,id=key0,file=/proc/self/fd/4,format=raw "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0,key-secret=key0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/s,uid=107,gid=108 "
          "-D /proc/self/fd/7 -d tpm" },
        /* backend-uri=dir://, key fd=, --log file=- (no log), -t */
        { "swtpm socket --tpm2 --ctrl=type=unixio,path=/s "
          "--tpmstate=backend-uri=dir:///d --key fd=9,mode=aes-256-cbc,format=binary "
          "--log file=- -t", "/k",
          "qtpm -drive file=/d/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-object secret,id=key0,file=/k,format=raw "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0,key-secret=key0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/s,terminate=on" },
        /* passphrase file, kdf=pbkdf2, remove, a path with a comma */
        { "swtpm socket --tpm2 --ctrl type=unixio,path=/s --tpmstate dir=/d "
          "--key pwdfile=/p,kdf=pbkdf2,remove=false,mode=aes-cbc --runas tss",
          "/x,y",
          "qtpm -drive file=/d/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-object secret,id=key0,file=/x,,y,format=raw "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0,passphrase-secret=key0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/s" },
        /* libvirt 9.0 on shared storage: the source, then the target */
        { "swtpm socket --ctrl type=unixio,path=/s,mode=0600 "
          "--tpmstate dir=/nfs/U/tpm2,mode=0600 --log file=/l --terminate --tpm2 "
          "--key pwdfd=24,mode=aes-256-cbc --migration-key pwdfd=25,mode=aes-256-cbc "
          "--migration release-lock-outgoing", "/proc/self/fd/3",
          "qtpm -drive file=/nfs/U/tpm2/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-object secret,id=key0,file=/proc/self/fd/3,format=raw "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0,passphrase-secret=key0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/s,mode=0600,terminate=on,"
          "release-lock-outgoing=on -D /l" },
        { "swtpm socket --ctrl type=unixio,path=/s,mode=0600 "
          "--tpmstate dir=/nfs/U/tpm2,mode=0600 --log file=/l --terminate --tpm2 "
          "--migration release-lock-outgoing,incoming", NULL,
          "qtpm -drive file=/nfs/U/tpm2/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/s,mode=0600,terminate=on,"
          "incoming=on,release-lock-outgoing=on -D /l" },
        /* swtpm's other order, and incoming alone */
        { "swtpm socket --tpm2 --ctrl type=unixio,path=/s --tpmstate dir=/d "
          "--migration=incoming,release-lock-outgoing", NULL,
          "qtpm -drive file=/d/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/s,incoming=on,"
          "release-lock-outgoing=on" },
        { "swtpm socket --tpm2 --ctrl type=unixio,path=/s --tpmstate dir=/d "
          "--migration incoming", NULL,
          "qtpm -drive file=/d/tpm2-00.qcow2,if=none,id=drive0,format=qcow2 "
          "-tpmdev libtpms,id=tpm0,nvram=drive0,version=2.0 "
          "-export swtpm,id=swtpm0,tpmdev=tpm0,ctrl=unix:/s,incoming=on" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *got = socket_argv(cases[i].swtpm, cases[i].key_path);
        g_assert_cmpstr(got, ==, cases[i].qtpm);
    }
}

static void test_socket_fields(void)
{
    g_auto(GStrv) a = args("swtpm socket --tpm2 --ctrl type=unixio,path=/s "
                           "--tpmstate dir=/d,mode=0640 --log file=/l,truncate "
                           "--key pwdfile=/p,remove --runas tss");
    SwtpmSocketOpts o;
    g_autoptr(GError) err = NULL;

    g_assert_true(swtpm_socket_parse(g_strv_length(a), a, &o, &err));
    g_assert_cmpstr(o.state_mode, ==, "0640");
    g_assert_true(o.log_truncate);
    g_assert_cmpint(o.log_level, ==, 1);
    g_assert_true(o.key.remove);
    g_assert_cmpint(o.key.kind, ==, SWTPM_KEY_PASSPHRASE);
    g_assert_cmpstr(o.key.file, ==, "/p");
    g_assert_cmpstr(o.runas, ==, "tss");
    g_assert_false(o.mig_incoming);
    g_assert_false(o.mig_release_lock_outgoing);
    swtpm_socket_opts_clear(&o);

    for (const char *const *s = (const char *const[]){
             "swtpm socket --print-capabilities", "swtpm socket --help",
             "swtpm socket -h", "swtpm socket --version", "swtpm --version",
             "swtpm --help", NULL }; *s; s++) {
        g_auto(GStrv) b = args(*s);

        g_assert_true(swtpm_socket_parse(g_strv_length(b), b, &o, &err));
        g_assert_true(o.print_capabilities || o.help || o.version);
        swtpm_socket_opts_clear(&o);
    }
}

/* Each refused command line fails with a message holding @needle. */
static void expect_refused(bool (*parse)(int, char **, void *, GError **),
                           const char *cmdline, const char *needle)
{
    g_auto(GStrv) a = args(cmdline);
    g_autoptr(GError) err = NULL;
    union {
        SwtpmSocketOpts s;
        SwtpmSetupOpts u;
        SwtpmIoctlOpts i;
    } o;

    if (parse(g_strv_length(a), a, &o, &err)) {
        g_test_message("accepted: %s", cmdline);
        g_assert_not_reached();
    }
    if (!strstr(err->message, needle)) {
        g_test_message("%s: '%s' lacks '%s'", cmdline, err->message, needle);
        g_assert_not_reached();
    }
    /* One sentence: one line, no trailing full stop or newline. */
    g_assert_null(strchr(err->message, '\n'));
}

#define SOCK "swtpm socket --tpm2 --ctrl type=unixio,path=/s --tpmstate dir=/d "

static void test_socket_refused(void)
{
    static const struct {
        const char *cmdline, *needle;
    } cases[] = {
        { "swtpm chardev --tpmstate dir=/d", "only the 'socket' interface" },
        { "swtpm cuse -n vtpm0", "only the 'socket' interface" },
        { "swtpm", "only the 'socket' interface" },
        { SOCK "--bogus", "--bogus: unknown option" },
        { SOCK "-x", "-x: unknown option" },
        { SOCK "stray", "'stray': unexpected argument" },
        { SOCK "--tpm2=yes", "--tpm2 takes no value" },
        { SOCK "--log", "--log needs a value" },
        { "swtpm socket --tpm2 --tpmstate dir=/d", "--ctrl is required" },
        { "swtpm socket --tpm2 --ctrl type=unixio,path=/s", "--tpmstate is required" },
        { SOCK "--ctrl type=unixio,path=/t", "--ctrl given twice" },
        { "swtpm socket --ctrl type=unixio --tpmstate dir=/d", "needs path=" },
        { "swtpm socket --ctrl path=/s --tpmstate dir=/d", "'type' is missing" },
        { "swtpm socket --ctrl type=vsock,path=/s --tpmstate dir=/d",
          "type='vsock' is not supported" },
        { "swtpm socket --ctrl type=unixio,path=/s,fd=3 --tpmstate dir=/d",
          "--ctrl: 'fd' is not supported" },
        { "swtpm socket --ctrl type=unixio,path=/s,clientfd=3 --tpmstate dir=/d",
          "--ctrl: 'clientfd' is not supported" },
        { "swtpm socket --ctrl type=unixio,path=/s,terminate --tpmstate dir=/d",
          "--ctrl: 'terminate' is not supported" },
        { "swtpm socket --ctrl type=unixio,path=/s,mode=0999 --tpmstate dir=/d",
          "mode='0999' is not an octal file mode" },
        { "swtpm socket --ctrl type=unixio,path=/s,foo=1 --tpmstate dir=/d",
          "--ctrl: unknown parameter 'foo'" },
        { "swtpm socket --ctrl type=unixio,path=/s,path=/t --tpmstate dir=/d",
          "parameter 'path' given twice" },
        { "swtpm socket --ctrl type=unixio,path=/s,port=1 --tpmstate dir=/d",
          "belong to type=tcp" },
        { "swtpm socket --ctrl type=tcp --tpmstate dir=/d", "type=tcp needs port=" },
        { "swtpm socket --ctrl type=tcp,port=0 --tpmstate dir=/d",
          "port='0' is not a TCP port" },
        { "swtpm socket --ctrl type=tcp,port=1,path=/s --tpmstate dir=/d",
          "'path' belongs to type=unixio" },
        { "swtpm socket --ctrl type=tcp,port=1,ifname=eth0 --tpmstate dir=/d",
          "'ifname' is not supported" },
        { SOCK "--server type=unixio,path=/d,mode=0600", "--ctrl socket only" },
        { SOCK "--server type=tcp,port=1,disconnect", "'disconnect' is not supported" },
        { SOCK "--server type=unixio,path=/d,fd=4", "--server: 'fd' is not supported" },
        { SOCK "--tpmstate dir=/e", "--tpmstate given twice" },
        { "swtpm socket --ctrl type=unixio,path=/s --tpmstate mode=0600",
          "exactly one of dir= and backend-uri=" },
        { "swtpm socket --ctrl type=unixio,path=/s --tpmstate backend-uri=linear:///x",
          "neither dir://PATH nor file://PATH" },
        { "swtpm socket --ctrl type=unixio,path=/s --tpmstate dir=/d,lock",
          "'lock' is not needed" },
        { SOCK "--log level=2", "exactly one of file= and fd=" },
        { SOCK "--log file=/l,prefix=x", "'prefix' is not supported" },
        { SOCK "--log file=/l,level=loud", "level='loud' is not a number" },
        { SOCK "--log fd=x", "fd='x' is not a file descriptor" },
        { SOCK "--pid fd=3", "--pid: fd= is not supported" },
        { SOCK "--pid file=/a --pid file=/b", "--pid given twice" },
        { SOCK "--key file=/k --key file=/j", "--key given twice" },
        { SOCK "--key mode=aes-256-cbc", "exactly one of file=, fd=, pwdfile=, pwdfd=" },
        { SOCK "--key file=/k,pwdfd=3", "exactly one of file=, fd=, pwdfile=, pwdfd=" },
        { SOCK "--key file=/k,mode=aes-cbc", "needs a 256-bit key" },
        { SOCK "--key fd=3,mode=aes-128-cbc", "needs a 256-bit key" },
        { SOCK "--key file=/k,mode=aes-512-xts", "mode='aes-512-xts' is not one of" },
        { SOCK "--key file=/k,format=base64", "neither hex nor binary" },
        { SOCK "--key pwdfile=/k,format=hex", "format= applies to file= and fd=" },
        { SOCK "--key pwdfile=/k,kdf=sha512", "kdf=sha512 is not supported" },
        { SOCK "--key file=/k,kdf=pbkdf2", "kdf= applies to pwdfile= and pwdfd=" },
        { SOCK "--key pwdfd=3,remove", "remove= applies to a key read from a file" },
        { SOCK "--key pwdfile=/p,remove=maybe", "neither true nor false" },
        { SOCK "--migration-key pwdfd=3", "--migration-key needs --key" },
        { SOCK "--migration outgoing", "--migration: unknown parameter 'outgoing'" },
        { SOCK "--migration incoming=yes", "--migration: 'incoming' takes no value" },
        { SOCK "--migration incoming,incoming", "parameter 'incoming' given twice" },
        { SOCK "--migration incoming --migration release-lock-outgoing",
          "--migration given twice" },
        { SOCK "--migration ,", "--migration: empty parameter" },
        { SOCK "--flags not-need-init", "'not-need-init' is not supported" },
        { SOCK "--flags startup-clear", "'startup-clear' is not supported" },
        { SOCK "--flags disable-auto-shutdown", "'disable-auto-shutdown'" },
        { SOCK "--flags frobnicate", "unknown flag 'frobnicate'" },
        { SOCK "--port 2321", "--port: is not supported" },
        { SOCK "-p 2321", "--port: is not supported" },
        { SOCK "--fd 3", "--fd: is not supported" },
        { SOCK "--chroot /x", "--chroot: is not supported" },
        { SOCK "--locality reject-locality-4", "--locality: is not supported" },
        { SOCK "--seccomp action=none", "--seccomp: is not supported" },
        { SOCK "--print-states", "--print-states: is not supported" },
        { SOCK "--profile name=default-v1", "--profile: is not supported" },
        { SOCK "--print-profiles", "--print-profiles: is not supported" },
        { SOCK "--print-info 1", "--print-info: is not supported" },
        { SOCK "--pcap /x", "--pcap: is not supported" },
        { SOCK "--vtpm-proxy", "--vtpm-proxy: is not supported" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        expect_refused((void *)swtpm_socket_parse, cases[i].cmdline,
                       cases[i].needle);
    }
}

static void setup_argvs(const char *cmdline, char **create, char **manufacture)
{
    g_auto(GStrv) a = args(cmdline);
    SwtpmSetupOpts o;
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) c = NULL;
    g_auto(GStrv) m = NULL;
    g_autofree char *image = NULL;

    if (!swtpm_setup_parse(g_strv_length(a), a, &o, &err)) {
        g_test_message("%s: %s", cmdline, err->message);
        g_assert_not_reached();
    }
    image = swtpm_compat_image_path(o.state_dir, o.state_file, o.tpm2);
    c = swtpm_setup_create_argv(&o, "qtpm-img", image,
                                o.key.kind ? "/proc/self/fd/3" : NULL);
    m = swtpm_setup_manufacture_argv(&o, "qtpm-img", "/ca", image,
                                     o.key.kind ? "/proc/self/fd/3" : NULL);
    *create = g_strjoinv(" ", c);
    *manufacture = m ? g_strjoinv(" ", m) : NULL;
    swtpm_setup_opts_clear(&o);
}

static void test_setup_libvirt(void)
{
    static const struct {
        const char *setup, *create, *manufacture;
    } cases[] = {
        /* libvirt 9.0, first start */
        { "swtpm_setup --tpm2 --tpm-state /v/U/tpm2 --vmid vm:U --logfile /l "
          "--createek --create-ek-cert --create-platform-cert --lock-nvram "
          "--not-overwrite",
          "qtpm-img create --tpm 2.0 /v/U/tpm2/tpm2-00.qcow2",
          "qtpm-img manufacture --ca-dir /ca --vmid vm:U /v/U/tpm2/tpm2-00.qcow2" },
        /* with <encryption>: the passphrase through a pipe */
        { "swtpm_setup --tpm2 --pwdfile-fd 23 --cipher aes-256-cbc --tpm-state /d "
          "--vmid vm:U --logfile /l --createek --create-ek-cert "
          "--create-platform-cert --lock-nvram --not-overwrite",
          "qtpm-img create --tpm 2.0 --passphrase-file /proc/self/fd/3 "
          "/d/tpm2-00.qcow2",
          "qtpm-img manufacture --passphrase-file /proc/self/fd/3 --ca-dir /ca "
          "--vmid vm:U /d/tpm2-00.qcow2" },
        /* incoming migration: a blank TPM the stream fills */
        { "swtpm_setup --tpm2 --tpm-state /d --logfile /l --overwrite",
          "qtpm-img create --tpm 2.0 /d/tpm2-00.qcow2", NULL },
        /* what is not asked for is not made */
        { "swtpm_setup --tpm2 --tpmstate dir:///d --createek",
          "qtpm-img create --tpm 2.0 /d/tpm2-00.qcow2",
          "qtpm-img manufacture --ca-dir /ca --no-ek-cert --no-platform-cert "
          "--no-lock-nvram /d/tpm2-00.qcow2" },
        { "swtpm_setup --tpm2 --tpm-state file:///i.qcow2 --create-ek-cert "
          "--pwdfile /p --cipher aes-128-cbc",
          "qtpm-img create --tpm 2.0 --passphrase-file /proc/self/fd/3 /i.qcow2",
          "qtpm-img manufacture --passphrase-file /proc/self/fd/3 --ca-dir /ca "
          "--no-platform-cert --no-lock-nvram /i.qcow2" },
        /* TPM 1.2: a plain image, nothing manufactured */
        { "swtpm_setup --tpm-state /d --runas tss",
          "qtpm-img create --tpm 1.2 /d/tpm-00.qcow2", NULL },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *c = NULL;
        g_autofree char *m = NULL;

        setup_argvs(cases[i].setup, &c, &m);
        g_assert_cmpstr(c, ==, cases[i].create);
        g_assert_cmpstr(m, ==, cases[i].manufacture);
    }
}

static void test_setup_fields(void)
{
    g_auto(GStrv) a = args("swtpm_setup --tpm2 --tpm-state /d --pwdfile-fd 7 "
                           "--not-overwrite --logfile /l --runas tss");
    SwtpmSetupOpts o;
    g_autoptr(GError) err = NULL;

    g_assert_true(swtpm_setup_parse(g_strv_length(a), a, &o, &err));
    g_assert_cmpint(o.key.fd, ==, 7);
    g_assert_null(o.key.file);
    g_assert_true(o.not_overwrite);
    g_assert_cmpstr(o.logfile, ==, "/l");
    g_assert_cmpstr(o.runas, ==, "tss");
    swtpm_setup_opts_clear(&o);
    for (const char *const *s = (const char *const[]){
             "swtpm_setup --print-capabilities", "swtpm_setup --help",
             "swtpm_setup -h", "swtpm_setup --version", NULL }; *s; s++) {
        g_auto(GStrv) b = args(*s);

        g_assert_true(swtpm_setup_parse(g_strv_length(b), b, &o, &err));
        g_assert_true(o.print_capabilities || o.help || o.version);
        swtpm_setup_opts_clear(&o);
    }
}

#define SETUP "swtpm_setup --tpm2 --tpm-state /d "

static void test_setup_refused(void)
{
    static const struct {
        const char *cmdline, *needle;
    } cases[] = {
        { "swtpm_setup --tpm2", "--tpm-state is required" },
        { SETUP "--tpm-state /e", "--tpm-state given twice" },
        { "swtpm_setup --tpm-state linear:///x", "neither a directory" },
        { SETUP "--overwrite --not-overwrite", "exclude each other" },
        { SETUP "--cipher aes-256-cbc", "--cipher needs --pwdfile" },
        { SETUP "--pwdfile /p --cipher aes-256-xts", "neither aes-128-cbc nor" },
        { SETUP "--pwdfile /p --pwdfile-fd 3", "give one passphrase" },
        { SETUP "--pwdfile-fd three", "is not a file descriptor" },
        { SETUP "--vmid a --vmid b", "--vmid given twice" },
        { "swtpm_setup --tpm-state /d --createek", "TPM 2.0 only" },
        { "swtpm_setup --tpm-state /d --create-ek-cert", "TPM 2.0 only" },
        { "swtpm_setup --tpm-state /d --lock-nvram", "TPM 2.0 only" },
        { SETUP "--bogus", "--bogus: unknown option" },
        { SETUP "--vmid", "--vmid needs a value" },
        { SETUP "--config /etc/swtpm_setup.conf", "--config: is not supported" },
        { SETUP "--create-config-files", "--create-config-files: is not supported" },
        { SETUP "--ecc", "--ecc: is not supported" },
        { SETUP "--decryption", "--decryption: is not supported" },
        { SETUP "--allow-signing", "--allow-signing: is not supported" },
        { SETUP "--pcr-banks sha256", "--pcr-banks: is not supported" },
        { SETUP "--rsa-keysize 3072", "--rsa-keysize: is not supported" },
        { SETUP "--display", "--display: is not supported" },
        { SETUP "--reconfigure", "--reconfigure: is not supported" },
        { SETUP "--keyfile /k", "--keyfile: is not supported" },
        { SETUP "--keyfile-fd 3", "--keyfile-fd: is not supported" },
        { SETUP "--tpm /usr/bin/swtpm", "--tpm: is not supported" },
        { SETUP "--swtpm_ioctl /usr/bin/swtpm_ioctl", "--swtpm_ioctl: is not" },
        { SETUP "--create-spk", "--create-spk: is not supported" },
        { SETUP "--take-ownership", "--take-ownership: is not supported" },
        { SETUP "--ownerpass x", "--ownerpass: is not supported" },
        { SETUP "--owner-well-known", "--owner-well-known: is not supported" },
        { SETUP "--srkpass x", "--srkpass: is not supported" },
        { SETUP "--srk-well-known", "--srk-well-known: is not supported" },
        { SETUP "--write-ek-cert-files /x", "--write-ek-cert-files: is not" },
        { SETUP "--tcsd-system-ps-file /x", "--tcsd-system-ps-file: is not" },
        { SETUP "--profile x", "--profile: is not supported" },
        { SETUP "--profile-name x", "--profile-name: is not supported" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        expect_refused((void *)swtpm_setup_parse, cases[i].cmdline,
                       cases[i].needle);
    }
}

static void test_ioctl(void)
{
    static const struct {
        const char *cmdline;
        SwtpmIoctlCmd cmd;
        const char *request;    /* hex */
        size_t answer;
    } cases[] = {
        { "swtpm_ioctl --unix /s -s", SWTPM_IOCTL_SHUTDOWN, "00000003", 4 },
        { "swtpm_ioctl -c --unix /s", SWTPM_IOCTL_CAPS, "00000001", 8 },
        { "swtpm_ioctl --unix=/s --c", SWTPM_IOCTL_CAPS, "00000001", 8 },
        { "swtpm_ioctl --tcp 127.0.0.1:2322 -i", SWTPM_IOCTL_INIT,
          "0000000200000001", 4 },
        { "swtpm_ioctl --unix /s --stop", SWTPM_IOCTL_STOP, "0000000e", 4 },
        { "swtpm_ioctl --unix /s -stop", SWTPM_IOCTL_STOP, "0000000e", 4 },
        { "swtpm_ioctl --unix /s -e", SWTPM_IOCTL_ESTABLISHED, "00000004", 8 },
        { "swtpm_ioctl --unix /s -r 3", SWTPM_IOCTL_RESET_EST, "0000000b03", 4 },
        { "swtpm_ioctl --unix /s -l 4", SWTPM_IOCTL_LOCALITY, "0000000504", 4 },
        { "swtpm_ioctl --unix /s -C", SWTPM_IOCTL_CANCEL, "00000009", 4 },
        { "swtpm_ioctl --unix /s -v", SWTPM_IOCTL_VOLATILE, "0000000a", 4 },
        { "swtpm_ioctl --unix /s -g", SWTPM_IOCTL_CONFIG, "0000000f", 8 },
        { "swtpm_ioctl --unix /s -b 0x1000", SWTPM_IOCTL_BUFFERSIZE,
          "0000001100001000", 16 },
        { "swtpm_ioctl --unix /s --info 3", SWTPM_IOCTL_INFO,
          "00000012" "0000000000000003" "00000000" "00000000", 12 },
        { "swtpm_ioctl --unix /s --lock-storage 100", SWTPM_IOCTL_LOCK_STORAGE,
          "0000001300000064", 4 },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        g_auto(GStrv) a = args(cases[i].cmdline);
        SwtpmIoctlOpts o;
        g_autoptr(GError) err = NULL;
        uint8_t req[32];
        size_t n;
        g_autoptr(GString) hex = g_string_new(NULL);

        g_assert_true(swtpm_ioctl_parse(g_strv_length(a), a, &o, &err));
        g_assert_cmpint(o.cmd, ==, cases[i].cmd);
        n = swtpm_ioctl_encode(&o, 0, req, sizeof(req));
        for (size_t j = 0; j < n; j++) {
            g_string_append_printf(hex, "%02x", req[j]);
        }
        g_assert_cmpstr(hex->str, ==, cases[i].request);
        g_assert_cmpuint(swtpm_ioctl_answer_size(o.cmd), ==, cases[i].answer);
        swtpm_ioctl_opts_clear(&o);
    }
}

static void test_ioctl_refused(void)
{
    static const struct {
        const char *cmdline, *needle;
    } cases[] = {
        { "swtpm_ioctl -s", "no control channel given" },
        { "swtpm_ioctl --unix /s", "no command given" },
        { "swtpm_ioctl --unix /s -s -i", "only one command may be given" },
        { "swtpm_ioctl --unix /s --tcp h:1 -s", "give one control channel" },
        { "swtpm_ioctl /dev/vtpm0 -s", "qtpm has no CUSE device" },
        { "swtpm_ioctl --tpm-device /dev/vtpm0 -s", "--tpm-device: is not supported" },
        { "swtpm_ioctl --unix /s -h data", "--h: is not supported" },
        { "swtpm_ioctl --unix /s --save permanent /f", "--save: is not supported" },
        { "swtpm_ioctl --unix /s --load permanent /f", "--load: is not supported" },
        { "swtpm_ioctl --unix /s -l 5", "is not a number from 0 to 4" },
        { "swtpm_ioctl --unix /s -r x", "is not a number from 0 to 4" },
        { "swtpm_ioctl --unix /s -b -1", "is not a number" },
        { "swtpm_ioctl --unix /s --info zz", "--info: 'zz' is not a number" },
        { "swtpm_ioctl --unix /s --bogus", "--bogus: unknown option" },
    };

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        expect_refused((void *)swtpm_ioctl_parse, cases[i].cmdline,
                       cases[i].needle);
    }
}

static void test_capabilities(void)
{
    g_assert_nonnull(strstr(swtpm_socket_capabilities_json(), "\"cmdarg-pwd-fd\""));
    g_assert_nonnull(strstr(swtpm_socket_capabilities_json(),
                            "\"cmdarg-migration\""));
    g_assert_null(strstr(swtpm_socket_capabilities_json(), "flags-opt-startup"));
    g_assert_null(strstr(swtpm_socket_capabilities_json(), "print-states"));
    g_assert_nonnull(strstr(swtpm_setup_capabilities_json(),
                            "\"cmdarg-pwdfile-fd\""));
    g_assert_null(strstr(swtpm_setup_capabilities_json(), "tpm-1.2"));
    g_assert_null(strstr(swtpm_setup_capabilities_json(), "reconfigure"));
    g_assert_null(strstr(swtpm_setup_capabilities_json(), "create-config-files"));
}

/*
 * Random command lines from the options' own words and random bytes: each
 * parse succeeds or fails with one line, and what succeeds translates.
 */
static void test_fuzz(void)
{
    static const char *const words[] = {
        "socket", "--ctrl", "--server", "--tpmstate", "--tpm2", "--key",
        "--migration-key", "--log", "--pid", "--flags", "--migration",
        "--terminate", "--daemon", "--runas", "--print-capabilities", "-d", "-t",
        "type=unixio,path=/s", "type=tcp,port=1", "dir=/d", "backend-uri=file:///f",
        "pwdfd=3", "file=/k,format=hex", "file=/l,level=9", "mode=0600", "=", ",",
        ",,", "--tpm-state", "--pwdfile-fd", "--cipher", "aes-256-cbc",
        "--createek", "--create-ek-cert", "--lock-nvram", "--overwrite",
        "--not-overwrite", "--vmid", "--logfile", "--unix", "--tcp", "-s", "-c",
        "-b", "--info", "-l", "0x", "4", "h:1", "[::1]:2", "--", "-", "",
        "incoming", "release-lock-outgoing,incoming",
    };
    GRand *r = g_rand_new_with_seed(0x5377544d);

    for (int iter = 0; iter < 20000; iter++) {
        int n = g_rand_int_range(r, 1, 10);
        char **argv = g_new0(char *, n + 1);

        argv[0] = g_strdup("prog");
        for (int i = 1; i < n; i++) {
            if (g_rand_int_range(r, 0, 8) == 0) {
                int len = g_rand_int_range(r, 0, 12);

                argv[i] = g_malloc0(len + 1);
                for (int j = 0; j < len; j++) {
                    argv[i][j] = (char)g_rand_int_range(r, 1, 256);
                }
            } else {
                argv[i] = g_strdup(words[g_rand_int_range(r, 0, ARRAY_SIZE(words))]);
            }
        }
        {
            SwtpmSocketOpts so;
            SwtpmSetupOpts su;
            SwtpmIoctlOpts io;
            g_autoptr(GError) e1 = NULL;
            g_autoptr(GError) e2 = NULL;
            g_autoptr(GError) e3 = NULL;
            uint8_t buf[32];

            if (swtpm_socket_parse(n, argv, &so, &e1)) {
                if (so.ctrl_kind != SWTPM_SOCK_NONE &&
                    (so.state_dir || so.state_file)) {
                    g_autofree char *img = swtpm_compat_image_path(
                        so.state_dir, so.state_file, so.tpm2);
                    g_strfreev(swtpm_socket_qtpm_argv(&so, "q", img, "/k"));
                }
                swtpm_socket_opts_clear(&so);
            } else {
                g_assert_null(strchr(e1->message, '\n'));
            }
            if (swtpm_setup_parse(n, argv, &su, &e2)) {
                if (su.state_dir || su.state_file) {
                    g_autofree char *img = swtpm_compat_image_path(
                        su.state_dir, su.state_file, su.tpm2);
                    g_strfreev(swtpm_setup_create_argv(&su, "i", img, "/k"));
                    g_strfreev(swtpm_setup_manufacture_argv(&su, "i", "/c", img,
                                                            "/k"));
                }
                swtpm_setup_opts_clear(&su);
            } else {
                g_assert_null(strchr(e2->message, '\n'));
            }
            if (swtpm_ioctl_parse(n, argv, &io, &e3)) {
                swtpm_ioctl_encode(&io, 0, buf, sizeof(buf));
                swtpm_ioctl_opts_clear(&io);
            } else {
                g_assert_null(strchr(e3->message, '\n'));
            }
        }
        g_strfreev(argv);
    }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/swtpm-compat/socket/libvirt", test_socket_libvirt);
    g_test_add_func("/swtpm-compat/socket/fields", test_socket_fields);
    g_test_add_func("/swtpm-compat/socket/refused", test_socket_refused);
    g_test_add_func("/swtpm-compat/setup/libvirt", test_setup_libvirt);
    g_test_add_func("/swtpm-compat/setup/fields", test_setup_fields);
    g_test_add_func("/swtpm-compat/setup/refused", test_setup_refused);
    g_test_add_func("/swtpm-compat/ioctl/commands", test_ioctl);
    g_test_add_func("/swtpm-compat/ioctl/refused", test_ioctl_refused);
    g_test_add_func("/swtpm-compat/capabilities", test_capabilities);
    g_test_add_func("/swtpm-compat/fuzz", test_fuzz);
    return g_test_run();
}
