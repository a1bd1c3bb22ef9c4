// SPDX-License-Identifier: GPL-2.0
/*
 * A minimal frontend for the "xbtest" device type, whose backend is only xenstore nodes that
 * the harness's dom0 agent writes: it lets the tests drive the bus through backend edge cases
 * (Closing before Connected, the backend vanishing, a bogus backend-id, out-of-range states).
 * It follows the backend like a real frontend would: Initialised after probe, Connected when
 * the backend is, Closed when the backend closes or disappears; unknown states are ignored.
 */
#include <linux/module.h>
#include <xen/xen.h>
#include <xen/xenbus.h>

static int xbtest_probe(struct xenbus_device *dev, const struct xenbus_device_id *id)
{
	dev_info(&dev->dev, "xbtest: probed, backend %s (domain %d)\n", dev->otherend,
		 dev->otherend_id);
	return xenbus_switch_state(dev, XenbusStateInitialised);
}

static void xbtest_backend_changed(struct xenbus_device *dev, enum xenbus_state state)
{
	dev_info(&dev->dev, "xbtest: backend state %d (%s)\n", state, xenbus_strstate(state));
	switch (state) {
	case XenbusStateConnected:
		xenbus_switch_state(dev, XenbusStateConnected);
		break;
	case XenbusStateClosing:
	case XenbusStateUnknown: /* the backend's state node is gone */
		if (dev->state != XenbusStateClosed)
			xenbus_frontend_closed(dev);
		break;
	default:
		break;
	}
}

static void xbtest_remove(struct xenbus_device *dev)
{
	dev_info(&dev->dev, "xbtest: removed\n");
}

static const struct xenbus_device_id xbtest_ids[] = {
	{ "xbtest" },
	{ "" }
};

static struct xenbus_driver xbtest_driver = {
	.ids = xbtest_ids,
	.probe = xbtest_probe,
	.otherend_changed = xbtest_backend_changed,
	.remove = xbtest_remove,
	.not_essential = true,
};

static int __init xbtest_init(void)
{
	if (!xen_domain())
		return -ENODEV;
	return xenbus_register_frontend(&xbtest_driver);
}
module_init(xbtest_init);

static void __exit xbtest_exit(void)
{
	xenbus_unregister_driver(&xbtest_driver);
}
module_exit(xbtest_exit);

MODULE_DESCRIPTION("Frontend for harness-scripted xbtest backends");
MODULE_LICENSE("GPL");
MODULE_ALIAS("xen:xbtest");
