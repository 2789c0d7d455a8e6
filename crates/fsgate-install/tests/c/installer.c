/*
 * A setup program written in C that drives the fsgate installer library.
 *
 *   installer install   ROOT PACKAGE GUID   install, print "rc=N reboot=R"
 *   installer roundtrip ROOT PACKAGE GUID   install, check version/status/verify, uninstall,
 *                                           check the product is gone, refuse a bad GUID
 *
 * Exit status 0 when every step did what the library documents; otherwise the failing step
 * and the library's message are printed on stderr and the status is 1. In `install` mode the
 * status is 0 only when the call succeeded; the code is always printed.
 */
#include <stdio.h>
#include <string.h>

#include "fsgate_install.h"

static int fail(const char *step, uint32_t rc) {
    char message[512];
    fsgate_last_error(message, sizeof message);
    fprintf(stderr, "%s failed: rc=%u: %s\n", step, rc, message);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s install|roundtrip ROOT PACKAGE GUID\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *root = argv[2], *package = argv[3], *guid = argv[4];
    int reboot = -1;
    uint32_t rc = fsgate_install(root, package, guid, "", 0, &reboot);
    if (strcmp(mode, "install") == 0) {
        printf("rc=%u reboot=%d\n", rc, reboot);
        return rc == 0 ? 0 : 1;
    }
    if (rc != 0)
        return fail("fsgate_install", rc);
    if (reboot != 0) {
        fprintf(stderr, "install asked for a reboot under an image root\n");
        return 1;
    }
    uint64_t version = 0;
    rc = fsgate_get_driver_version(root, guid, &version);
    if (rc != 0)
        return fail("fsgate_get_driver_version", rc);
    uint32_t status = 99;
    rc = fsgate_get_driver_status(root, guid, &status);
    if (rc != 0)
        return fail("fsgate_get_driver_status", rc);
    rc = fsgate_verify_installed(root, guid);
    if (rc != 0)
        return fail("fsgate_verify_installed", rc);
    printf("version=%016llx status=%u\n", (unsigned long long)version, status);

    rc = fsgate_uninstall(root, package, guid, "", FSGATE_UNINSTALL_VERSION_ALL, &reboot);
    if (rc != 0)
        return fail("fsgate_uninstall", rc);
    rc = fsgate_get_driver_version(root, guid, &version);
    if (rc != 0)
        return fail("fsgate_get_driver_version after uninstall", rc);
    rc = fsgate_verify_installed(root, guid);
    printf("after_uninstall version=%llu verify=%u\n", (unsigned long long)version, rc);

    rc = fsgate_install(root, package, "not-a-guid", "", 0, &reboot);
    char message[512];
    size_t len = fsgate_last_error(message, sizeof message);
    printf("bad_guid rc=%u whole_message=%d mentions_product_guid=%d\n", rc,
           len > 0 && len == strlen(message), strstr(message, "product_guid") != NULL);
    return 0;
}
