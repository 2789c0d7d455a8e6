/*
 * fsgate_install.h: the fsgate installer library (libfsgate_install.so).
 *
 * Mirrors the install/uninstall/get_driver_status/get_driver_version methods shared by every
 * fsgate class, for setup programs written in C or any language with a C FFI.
 *
 * Strings are UTF-8 and NUL-terminated. `root` may be NULL for the live system ($FSGATE_ROOT
 * or "/"); any other directory is treated as an image root and nothing outside it is touched.
 * Every function returns 0 on success or a Win32-style error code (1314 privilege not held,
 * 87 invalid parameter, 2 not found, 13 invalid data, 340 installed version too old, ...);
 * fsgate_last_error() then returns the message. Outputs are written only on success.
 */
#ifndef FSGATE_INSTALL_H
#define FSGATE_INSTALL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* install flags */
#define FSGATE_INSTALL_REMOVE_OLD_VERSIONS        0x00000001u
#define FSGATE_INSTALL_KEEP_START_TYPE            0x00000002u
#define FSGATE_INSTALL_OVERWRITE_SAME_VERSION     0x00000004u
#define FSGATE_INSTALL_REQUESTS_VIA_DRIVER_STACK  0x00000004u
#define FSGATE_INSTALL_ALWAYS_PREPARE_FILES       0x00010000u
#define FSGATE_INSTALL_FORCE_APP_PERMISSION_CHECK 0x00020000u
#define FSGATE_INSTALL_FORCE_SECURITY_CHECKS      0x00040000u

/* uninstall flags */
#define FSGATE_UNINSTALL_VERSION_PREVIOUS 0x00000001u
#define FSGATE_UNINSTALL_VERSION_CURRENT  0x00000002u
#define FSGATE_UNINSTALL_VERSION_ALL      0x00000003u

/* get_driver_status values */
#define FSGATE_MODULE_STATUS_NOT_PRESENT 0x00000000u
#define FSGATE_MODULE_STATUS_STOPPED     0x00000001u
#define FSGATE_MODULE_STATUS_RUNNING     0x00000004u

/* Installs (or upgrades) fsgate's system files for product_guid ("{xxxxxxxx-...}").
 * path_to_install "" means /usr/lib/fsgate/<major>. *reboot_needed (may be NULL) gets 0 or 1. */
uint32_t fsgate_install(const char *root, const char *package_path, const char *product_guid,
                        const char *path_to_install, uint32_t flags, int *reboot_needed);

/* Removes product_guid's registration; files go when no product references them. */
uint32_t fsgate_uninstall(const char *root, const char *package_path, const char *product_guid,
                          const char *installed_path, uint32_t flags, int *reboot_needed);

/* *status gets FSGATE_MODULE_STATUS_*. */
uint32_t fsgate_get_driver_status(const char *root, const char *product_guid, uint32_t *status);

/* *version gets major<<48 | minor<<32 | patch<<16 | build; 0 when not installed. */
uint32_t fsgate_get_driver_version(const char *root, const char *product_guid, uint64_t *version);

/* What every class's initialize(product_guid) checks: 0, 2 (not installed) or 340 (too old). */
uint32_t fsgate_verify_installed(const char *root, const char *product_guid);

/* Copies this thread's last error message into buffer (NUL-terminated, truncated to size);
 * returns its full length without the NUL, like snprintf. */
size_t fsgate_last_error(char *buffer, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* FSGATE_INSTALL_H */
