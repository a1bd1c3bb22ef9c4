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

#endif /* CONFIG_XEN_XENBUS_CORE_RUST */
#endif /* _XENBUS_RS_H */
