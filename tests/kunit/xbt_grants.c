// SPDX-License-Identifier: GPL-2.0
/*
 * How many grant references this domain can still allocate, for leak checks around the
 * attach/detach and reload loops: /sys/kernel/debug/xbt_grants/available. The grant table keeps
 * its free count to itself, so this finds the largest allocation that succeeds (a binary
 * search, each probe freed at once; the table grows to its maximum on the way). Equal numbers
 * before and after a loop mean every grant the loop took was given back.
 *
 * Writing anything to /sys/kernel/debug/xbt_grants/leak takes one grant reference and keeps it
 * until the module goes: the leak checks' own negative test (run.sh --break grant-leak).
 */
#include <linux/debugfs.h>
#include <linux/limits.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <xen/grant_table.h>
#include <xen/xen.h>

static struct dentry *xbt_grants_dir;
static grant_ref_t xbt_grants_leaked_head;
static unsigned int xbt_grants_leaked;
static DEFINE_MUTEX(xbt_grants_lock);

static bool xbt_grants_fit(unsigned int n)
{
	grant_ref_t head;

	if (gnttab_alloc_grant_references(n, &head))
		return false;
	gnttab_free_grant_references(head);
	return true;
}

static int xbt_grants_available(void *data, u64 *val)
{
	unsigned int lo = 0, hi = U16_MAX;	/* the allocation API takes a u16 */

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo + 1) / 2;

		if (xbt_grants_fit(mid))
			lo = mid;
		else
			hi = mid - 1;
	}
	*val = lo;
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(xbt_grants_fops, xbt_grants_available, NULL, "%llu\n");

static int xbt_grants_leak(void *data, u64 val)
{
	grant_ref_t head;
	int err;

	mutex_lock(&xbt_grants_lock);
	err = gnttab_alloc_grant_references(1, &head);
	if (!err) {
		/* A chain of one: link the earlier ones behind it, to be freed together. */
		if (xbt_grants_leaked)
			gnttab_release_grant_reference(&xbt_grants_leaked_head, head);
		else
			xbt_grants_leaked_head = head;
		xbt_grants_leaked++;
	}
	mutex_unlock(&xbt_grants_lock);
	return err;
}
DEFINE_DEBUGFS_ATTRIBUTE(xbt_grants_leak_fops, NULL, xbt_grants_leak, "%llu\n");

static int __init xbt_grants_init(void)
{
	if (!xen_domain())
		return -ENODEV;
	xbt_grants_dir = debugfs_create_dir("xbt_grants", NULL);
	debugfs_create_file_unsafe("available", 0400, xbt_grants_dir, NULL, &xbt_grants_fops);
	debugfs_create_file_unsafe("leak", 0200, xbt_grants_dir, NULL, &xbt_grants_leak_fops);
	return 0;
}

static void __exit xbt_grants_exit(void)
{
	debugfs_remove_recursive(xbt_grants_dir);
	if (xbt_grants_leaked)
		gnttab_free_grant_references(xbt_grants_leaked_head);
}

module_init(xbt_grants_init);
module_exit(xbt_grants_exit);
MODULE_DESCRIPTION("Grant references still available, for the harness's leak checks");
MODULE_LICENSE("GPL");
