// SPDX-License-Identifier: GPL-2.0
/*
 * The "xen" frontend bus of the Rust xenbus core: the declarative parts that have no Rust
 * abstraction (struct bus_type, sysfs attributes, uevent, PM ops, the static watch on
 * "device/" and the xenstore notifier). The logic -- enumeration, hot-plug, probe and remove,
 * the other end's state, shutdown, the boot-time wait -- is in bus.rs; the callbacks here only
 * forward to it. sysfs and uevent are identical to the C core's.
 */
#define pr_fmt(fmt) "xenbus_rs: " fmt

#include <linux/device.h>
#include <linux/init.h>
#include <linux/notifier.h>
#include <linux/slab.h>
#include <xen/platform_pci.h>
#include <xen/xen.h>
#include <xen/xenbus.h>
#include "xenbus_rs.h"

static const struct xenbus_device_id *match_device(const struct xenbus_device_id *arr,
						   const struct xenbus_device *dev)
{
	for (; *arr->devicetype != '\0'; arr++) {
		if (!strcmp(arr->devicetype, dev->devicetype))
			return arr;
	}
	return NULL;
}

const struct xenbus_device_id *xenbus_rs_match_id(const struct xenbus_driver *drv,
						  const struct xenbus_device *dev)
{
	return drv->ids ? match_device(drv->ids, dev) : NULL;
}

static int xenbus_rs_match(struct device *dev, const struct device_driver *drv)
{
	return xenbus_rs_match_id(to_xenbus_driver(drv), to_xenbus_device(dev)) != NULL;
}

static int xenbus_rs_uevent(const struct device *dev, struct kobj_uevent_env *env)
{
	if (add_uevent_var(env, "MODALIAS=xen:%s", to_xenbus_device(dev)->devicetype))
		return -ENOMEM;
	return 0;
}

static ssize_t nodename_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sprintf(buf, "%s\n", to_xenbus_device(dev)->nodename);
}
static DEVICE_ATTR_RO(nodename);

static ssize_t devtype_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sprintf(buf, "%s\n", to_xenbus_device(dev)->devicetype);
}
static DEVICE_ATTR_RO(devtype);

static ssize_t modalias_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sprintf(buf, "%s:%s\n", dev->bus->name, to_xenbus_device(dev)->devicetype);
}
static DEVICE_ATTR_RO(modalias);

static ssize_t state_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sprintf(buf, "%s\n", xenbus_strstate(to_xenbus_device(dev)->state));
}
static DEVICE_ATTR_RO(state);

static struct attribute *xenbus_dev_attrs[] = {
	&dev_attr_nodename.attr,
	&dev_attr_devtype.attr,
	&dev_attr_modalias.attr,
	&dev_attr_state.attr,
	NULL,
};

static const struct attribute_group xenbus_dev_group = {
	.attrs = xenbus_dev_attrs,
};

static const struct attribute_group *xenbus_rs_dev_groups[] = {
	&xenbus_dev_group,
	NULL,
};

/* The event-channel statistics of a bound device (the "xenbus" group of the C core). */
#define XENBUS_SHOW_STAT(name)							\
static ssize_t name##_show(struct device *_dev, struct device_attribute *attr,	\
			   char *buf)						\
{										\
	return sprintf(buf, "%d\n", atomic_read(&to_xenbus_device(_dev)->name)); \
}										\
static DEVICE_ATTR_RO(name)

XENBUS_SHOW_STAT(event_channels);
XENBUS_SHOW_STAT(events);
XENBUS_SHOW_STAT(spurious_events);
XENBUS_SHOW_STAT(jiffies_eoi_delayed);

static ssize_t spurious_threshold_show(struct device *dev, struct device_attribute *attr,
				       char *buf)
{
	return sprintf(buf, "%d\n", to_xenbus_device(dev)->spurious_threshold);
}

static ssize_t spurious_threshold_store(struct device *dev, struct device_attribute *attr,
					const char *buf, size_t count)
{
	unsigned int val;
	int ret = kstrtouint(buf, 0, &val);

	if (ret)
		return ret;
	to_xenbus_device(dev)->spurious_threshold = val;
	return count;
}
static DEVICE_ATTR_RW(spurious_threshold);

static struct attribute *xenbus_stat_attrs[] = {
	&dev_attr_event_channels.attr,
	&dev_attr_events.attr,
	&dev_attr_spurious_events.attr,
	&dev_attr_jiffies_eoi_delayed.attr,
	&dev_attr_spurious_threshold.attr,
	NULL
};

static const struct attribute_group xenbus_stat_group = {
	.name = "xenbus",
	.attrs = xenbus_stat_attrs,
};

int xenbus_rs_add_stat_group(struct xenbus_device *dev)
{
	return sysfs_create_group(&dev->dev.kobj, &xenbus_stat_group);
}

void xenbus_rs_remove_stat_group(struct xenbus_device *dev)
{
	sysfs_remove_group(&dev->dev.kobj, &xenbus_stat_group);
}

static const struct dev_pm_ops xenbus_rs_pm_ops = {
	.freeze = xenbus_rs_dev_freeze,
	.thaw = xenbus_rs_dev_thaw,
	.restore = xenbus_rs_dev_restore,
};

struct bus_type xenbus_rs_frontend_bus = {
	.name = "xen",
	.match = xenbus_rs_match,
	.uevent = xenbus_rs_uevent,
	.probe = xenbus_rs_dev_probe,
	.remove = xenbus_rs_dev_remove,
	.shutdown = xenbus_rs_dev_shutdown,
	.dev_groups = xenbus_rs_dev_groups,
	.pm = &xenbus_rs_pm_ops,
};

void xenbus_rs_dev_release(struct device *dev)
{
	kfree(to_xenbus_device(dev));
}

static void frontend_changed(struct xenbus_watch *watch, const char *path, const char *token)
{
	xenbus_rs_frontend_changed(path);
}

static struct xenbus_watch fe_watch = {
	.node = "device",
	.callback = frontend_changed,
};

static int frontend_probe_and_watch(struct notifier_block *nb, unsigned long event, void *data)
{
	xenbus_rs_probe_devices();
	register_xenbus_watch(&fe_watch);
	return NOTIFY_DONE;
}

static struct notifier_block xenstore_notifier = {
	.notifier_call = frontend_probe_and_watch,
};

static int __init xenbus_rs_bus_init(void)
{
	int err;

	if (!xen_domain())
		return -ENODEV;
	err = bus_register(&xenbus_rs_frontend_bus);
	if (err)
		return err;
	register_xenstore_notifier(&xenstore_notifier);
	return 0;
}
subsys_initcall(xenbus_rs_bus_init);

static int __init xenbus_rs_boot_wait(void)
{
	if (!xen_domain() || !xen_has_pv_devices())
		return -ENODEV;
	xenbus_rs_boot_wait_for_devices();
	return 0;
}
late_initcall(xenbus_rs_boot_wait);

int xenbus_watch_pathfmt(struct xenbus_device *dev, struct xenbus_watch *watch,
			 bool (*will_handle)(struct xenbus_watch *, const char *, const char *),
			 void (*callback)(struct xenbus_watch *, const char *, const char *),
			 const char *pathfmt, ...)
{
	va_list ap;
	char *path;
	int err;

	va_start(ap, pathfmt);
	path = kvasprintf(GFP_NOIO | __GFP_HIGH, pathfmt, ap);
	va_end(ap);
	if (!path) {
		xenbus_dev_fatal(dev, -ENOMEM, "allocating path for watch");
		return -ENOMEM;
	}
	err = xenbus_watch_path(dev, path, watch, will_handle, callback);
	if (err)
		kfree(path);
	return err;
}
EXPORT_SYMBOL_GPL(xenbus_watch_pathfmt);

/* Formats the message; bus.rs logs it and records it in error/<nodename>/error. */
static __printf(3, 0) void dev_error(struct xenbus_device *dev, int err, const char *fmt,
				     va_list ap)
{
	char *msg = kvasprintf(GFP_KERNEL, fmt, ap);

	if (msg) {
		xenbus_rs_dev_error(dev, err, msg);
		kfree(msg);
	}
}

void xenbus_dev_error(struct xenbus_device *dev, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dev_error(dev, err, fmt, ap);
	va_end(ap);
}
EXPORT_SYMBOL_GPL(xenbus_dev_error);

void xenbus_dev_fatal(struct xenbus_device *dev, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dev_error(dev, err, fmt, ap);
	va_end(ap);
	xenbus_switch_state(dev, XenbusStateClosing);
}
EXPORT_SYMBOL_GPL(xenbus_dev_fatal);

/* Implemented in Rust (bus.rs, client.rs). */
EXPORT_SYMBOL_GPL(__xenbus_register_frontend);
EXPORT_SYMBOL_GPL(xenbus_unregister_driver);
EXPORT_SYMBOL_GPL(xenbus_watch_path);
EXPORT_SYMBOL_GPL(xenbus_switch_state);
EXPORT_SYMBOL_GPL(xenbus_frontend_closed);
EXPORT_SYMBOL_GPL(xenbus_read_driver_state);
EXPORT_SYMBOL_GPL(xenbus_strstate);
EXPORT_SYMBOL_GPL(xenbus_setup_ring);
EXPORT_SYMBOL_GPL(xenbus_teardown_ring);
EXPORT_SYMBOL_GPL(xenbus_alloc_evtchn);
EXPORT_SYMBOL_GPL(xenbus_free_evtchn);

/* Backend-side ring mapping: frontends do not map foreign rings. */
int xenbus_map_ring_valloc(struct xenbus_device *dev, grant_ref_t *gnt_refs,
			   unsigned int nr_grefs, void **vaddr)
{
	WARN_ONCE(1, "xenbus_rs: xenbus_map_ring_valloc (backend API) is not implemented by the Rust core\n");
	*vaddr = NULL;
	return -ENODEV;
}
EXPORT_SYMBOL_GPL(xenbus_map_ring_valloc);

int xenbus_unmap_ring_vfree(struct xenbus_device *dev, void *vaddr)
{
	WARN_ONCE(1, "xenbus_rs: xenbus_unmap_ring_vfree (backend API) is not implemented by the Rust core\n");
	return -ENODEV;
}
EXPORT_SYMBOL_GPL(xenbus_unmap_ring_vfree);
