// SPDX-License-Identifier: GPL-2.0
/*
 * C glue of the Rust xenbus core: what Rust cannot express or has no abstraction for yet.
 *
 *  - initcalls at the C core's levels (postcore: find the store; device: mark it ready);
 *  - the variadic API (xenbus_printf/scanf/gather/read_unsigned), which formats and calls the
 *    Rust xenbus_write/xenbus_read;
 *  - the xenstore notifier chain and the exported variables;
 *  - EXPORT_SYMBOL_GPL for the Rust-implemented API, so that modules can use it;
 *  - the /dev/xen/xenbus misc device around the Rust file operations;
 */
#define pr_fmt(fmt) "xenbus_rs: " fmt

#include <linux/export.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/miscdevice.h>
#include <linux/notifier.h>
#include <linux/proc_fs.h>
#include <linux/slab.h>
#include <xen/events.h>
#include <xen/xen.h>
#include <xen/xenbus.h>
#include "xenbus_rs.h"

int xen_store_evtchn;
EXPORT_SYMBOL_GPL(xen_store_evtchn);

struct xenstore_domain_interface *xen_store_interface;
EXPORT_SYMBOL_GPL(xen_store_interface);

enum xenstore_init xen_store_domain_type;
EXPORT_SYMBOL_GPL(xen_store_domain_type);

int xenstored_ready;

static BLOCKING_NOTIFIER_HEAD(xenstore_chain);

int register_xenstore_notifier(struct notifier_block *nb)
{
	if (xenstored_ready > 0)
		return nb->notifier_call(nb, 0, NULL);
	blocking_notifier_chain_register(&xenstore_chain, nb);
	return 0;
}
EXPORT_SYMBOL_GPL(register_xenstore_notifier);

void unregister_xenstore_notifier(struct notifier_block *nb)
{
	blocking_notifier_chain_unregister(&xenstore_chain, nb);
}
EXPORT_SYMBOL_GPL(unregister_xenstore_notifier);

void xenbus_rs_notify_ready(void)
{
	blocking_notifier_call_chain(&xenstore_chain, 0, NULL);
}

int xenbus_printf(struct xenbus_transaction t, const char *dir, const char *node,
		  const char *fmt, ...)
{
	va_list ap;
	char *buf;
	int ret;

	va_start(ap, fmt);
	buf = kvasprintf(GFP_NOIO | __GFP_HIGH, fmt, ap);
	va_end(ap);
	if (!buf)
		return -ENOMEM;
	ret = xenbus_write(t, dir, node, buf);
	kfree(buf);
	return ret;
}
EXPORT_SYMBOL_GPL(xenbus_printf);

int xenbus_scanf(struct xenbus_transaction t, const char *dir, const char *node,
		 const char *fmt, ...)
{
	va_list ap;
	char *val;
	int ret;

	val = xenbus_read(t, dir, node, NULL);
	if (IS_ERR(val))
		return PTR_ERR(val);
	va_start(ap, fmt);
	ret = vsscanf(val, fmt, ap);
	va_end(ap);
	kfree(val);
	/* Nothing scanned: a distinctive errno, as the C core returns. */
	return ret == 0 ? -ERANGE : ret;
}
EXPORT_SYMBOL_GPL(xenbus_scanf);

unsigned int xenbus_read_unsigned(const char *dir, const char *node, unsigned int default_val)
{
	unsigned int val;

	if (xenbus_scanf(XBT_NIL, dir, node, "%u", &val) <= 0)
		val = default_val;
	return val;
}
EXPORT_SYMBOL_GPL(xenbus_read_unsigned);

int xenbus_gather(struct xenbus_transaction t, const char *dir, ...)
{
	const char *name;
	va_list ap;
	int ret = 0;

	va_start(ap, dir);
	while (ret == 0 && (name = va_arg(ap, char *)) != NULL) {
		const char *fmt = va_arg(ap, char *);
		void *result = va_arg(ap, void *);
		char *p = xenbus_read(t, dir, name, NULL);

		if (IS_ERR(p)) {
			ret = PTR_ERR(p);
			break;
		}
		if (fmt) {
			if (sscanf(p, fmt, result) == 0)
				ret = -EINVAL;
			kfree(p);
		} else {
			*(char **)result = p;
		}
	}
	va_end(ap);
	return ret;
}
EXPORT_SYMBOL_GPL(xenbus_gather);

/* Implemented in Rust (capi.rs). */
EXPORT_SYMBOL_GPL(xenbus_read);
EXPORT_SYMBOL_GPL(xenbus_write);
EXPORT_SYMBOL_GPL(xenbus_directory);
EXPORT_SYMBOL_GPL(xenbus_exists);
EXPORT_SYMBOL_GPL(xenbus_rm);
EXPORT_SYMBOL_GPL(xenbus_transaction_start);
EXPORT_SYMBOL_GPL(xenbus_transaction_end);
EXPORT_SYMBOL_GPL(register_xenbus_watch);
EXPORT_SYMBOL_GPL(unregister_xenbus_watch);
EXPORT_SYMBOL_GPL(xen_set_callback_via);
EXPORT_SYMBOL_GPL(xenbus_rs_mkdir);
EXPORT_SYMBOL_GPL(xenbus_rs_get_perms);
EXPORT_SYMBOL_GPL(xenbus_rs_set_perms);
EXPORT_SYMBOL_GPL(xenbus_rs_get_domain_path);

/* Implemented in Rust (dev_fops.rs); also used by xenfs for /proc/xen/xenbus. */
EXPORT_SYMBOL_GPL(xen_xenbus_fops);

static struct miscdevice xenbus_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "xen/xenbus",
	.fops = &xen_xenbus_fops,
};

static int __init xenbus_rs_init_call(void)
{
	int err = xenbus_rs_init();

	if (err && err != -ENODEV)
		pr_warn("xenstore bring-up failed: %d\n", err);
#ifdef CONFIG_XEN_COMPAT_XENFS
	/* /proc/xen for utilities that look for "xenbus" there, as the C core provides. */
	if (!err)
		proc_create_mount_point("xen");
#endif
	return err;
}
postcore_initcall(xenbus_rs_init_call);

static int __init xenbus_rs_probe_call(void)
{
	int err;

	if (!xen_domain())
		return -ENODEV;
	err = xenbus_rs_probe_initcall();
	if (err)
		return err;
	err = misc_register(&xenbus_dev);
	if (err)
		pr_err("could not register /dev/xen/xenbus: %d\n", err);
	return err;
}
device_initcall(xenbus_rs_probe_call);
