/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Interface between the Rust xenbus core and its C glue (xenbus_rs_glue.c).
 * Included by rust/bindings/bindings_helper.h so that `#[export]` checks the Rust definitions
 * against these declarations.
 */
#ifndef _XENBUS_RS_H
#define _XENBUS_RS_H

#ifdef CONFIG_XEN_XENBUS_CORE_RUST

/* How the store was found (the C core's enum xenstore_init, same values). */
enum xenstore_init {
	XS_UNKNOWN,
	XS_PV,
	XS_HVM,
	XS_LOCAL,
};
extern enum xenstore_init xen_store_domain_type;

/* Implemented in Rust, called from the glue's initcalls. */
int xenbus_rs_init(void);
int xenbus_rs_probe_initcall(void);

/* Implemented in the glue, called from Rust: xenstore is up, run the notifier chain. */
void xenbus_rs_notify_ready(void);

/*
 * Operations the C API has no function for, provided by the Rust core only (kernel::xen uses
 * them when CONFIG_XEN_XENBUS_CORE_RUST=y). Results are kmalloc'ed like xenbus_read()'s.
 */
struct xenbus_transaction;
int xenbus_rs_mkdir(struct xenbus_transaction t, const char *dir, const char *node);
/* Permissions as on the wire: "<perm>\0" entries, e.g. "n5\0r0\0"; *len bytes. */
void *xenbus_rs_get_perms(struct xenbus_transaction t, const char *dir, const char *node,
			  unsigned int *len);
int xenbus_rs_set_perms(struct xenbus_transaction t, const char *dir, const char *node,
			const char *perms, unsigned int len);
char *xenbus_rs_get_domain_path(unsigned int domid);

/* The frontend bus (xenbus_rs_bus.c declares, bus.rs implements). */
struct device;
struct xenbus_device;
struct xenbus_driver;
struct xenbus_device_id;
extern struct bus_type xenbus_rs_frontend_bus;
const struct xenbus_device_id *xenbus_rs_match_id(const struct xenbus_driver *drv,
						  const struct xenbus_device *dev);
int xenbus_rs_add_stat_group(struct xenbus_device *dev);
void xenbus_rs_remove_stat_group(struct xenbus_device *dev);
void xenbus_rs_dev_release(struct device *dev);
int xenbus_rs_dev_probe(struct device *dev);
void xenbus_rs_dev_remove(struct device *dev);
void xenbus_rs_dev_shutdown(struct device *dev);
int xenbus_rs_dev_freeze(struct device *dev);
int xenbus_rs_dev_thaw(struct device *dev);
int xenbus_rs_dev_restore(struct device *dev);
void xenbus_rs_frontend_changed(const char *path);
void xenbus_rs_probe_devices(void);
void xenbus_rs_boot_wait_for_devices(void);
void xenbus_rs_dev_error(struct xenbus_device *dev, int err, const char *msg);

#endif /* CONFIG_XEN_XENBUS_CORE_RUST */
#endif /* _XENBUS_RS_H */
