// SPDX-License-Identifier: GPL-2.0
/*
 * Xen macros and static inlines for Rust (kernel::xen and the Rust xenbus core).
 */

#ifdef CONFIG_XEN

#include <linux/sched/mm.h>
#include <asm/xen/hypercall.h>
#include <xen/events.h>
#include <xen/hvm.h>
#include <xen/page.h>
#include <xen/xen.h>

__rust_helper bool rust_helper_xen_domain(void)
{
	return xen_domain();
}

__rust_helper bool rust_helper_xen_pv_domain(void)
{
	return xen_pv_domain();
}

__rust_helper bool rust_helper_xen_hvm_domain(void)
{
	return xen_hvm_domain();
}

__rust_helper bool rust_helper_xen_initial_domain(void)
{
	return xen_initial_domain();
}

/* hvm_get_parameter() logs failures itself. */
__rust_helper int rust_helper_hvm_get_parameter(int idx, u64 *value)
{
	return hvm_get_parameter(idx, value);
}

__rust_helper int rust_helper_xen_hvm_set_parameter(int idx, u64 value)
{
	struct xen_hvm_param a = { .domid = DOMID_SELF, .index = idx, .value = value };

	return HYPERVISOR_hvm_op(HVMOP_set_param, &a);
}

__rust_helper void *rust_helper_xen_gfn_to_virt(unsigned long gfn)
{
	return gfn_to_virt(gfn);
}

__rust_helper void rust_helper_notify_remote_via_evtchn(evtchn_port_t port)
{
	notify_remote_via_evtchn(port);
}

/* Barriers for memory shared with another domain: real barriers even on !SMP kernels. */
__rust_helper void rust_helper_virt_mb(void)
{
	virt_mb();
}

__rust_helper void rust_helper_virt_rmb(void)
{
	virt_rmb();
}

__rust_helper void rust_helper_virt_wmb(void)
{
	virt_wmb();
}

__rust_helper unsigned int rust_helper_memalloc_noio_save(void)
{
	return memalloc_noio_save();
}

__rust_helper void rust_helper_memalloc_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

#endif /* CONFIG_XEN */

#ifdef CONFIG_XEN
#include <linux/module.h>
#include <linux/semaphore.h>

__rust_helper void rust_helper_sema_init(struct semaphore *sem, int val)
{
	sema_init(sem, val);
}

/* try_module_get() is inline without CONFIG_MODULE_UNLOAD. */
__rust_helper bool rust_helper_xen_try_module_get(struct module *module)
{
	return try_module_get(module);
}

__rust_helper int rust_helper_xen_event_channel_op(int cmd, void *arg)
{
	return HYPERVISOR_event_channel_op(cmd, arg);
}

__rust_helper unsigned long rust_helper_xen_virt_to_gfn(void *addr)
{
	return virt_to_gfn(addr);
}
#endif /* CONFIG_XEN */

#ifdef CONFIG_XEN
/* alloc_pages_exact() is a macro (allocation profiling). */
__rust_helper void *rust_helper_xen_alloc_pages_exact(size_t size, gfp_t gfp)
{
	return alloc_pages_exact(size, gfp);
}
#endif /* CONFIG_XEN */

#ifdef CONFIG_XEN
/* kernel::xen::xenbus::GrantedPage: the address and Xen frame of a lowmem page. */
__rust_helper void *rust_helper_xen_page_address(struct page *page)
{
	return page_address(page);
}

__rust_helper unsigned long rust_helper_xen_page_to_gfn(struct page *page)
{
	return xen_page_to_gfn(page);
}
#endif /* CONFIG_XEN */
