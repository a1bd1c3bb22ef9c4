// SPDX-License-Identifier: GPL-2.0

//! The `xen` frontend bus: devices from `device/<type>/<id>`, their drivers, the other end.
//!
//! Behaviour follows the C core (`xenbus_probe.c`, `xenbus_probe_frontend.c`) so that
//! unmodified C frontends (xen-blkfront, xen-netfront, hvc_xen) bind as before:
//!
//! - a device is created for `device/<type>/<id>` only while its `state` is Initialising; its
//!   bus id is `<type>-<id>`; `console/0` is ignored;
//! - the watch on `device` adds new devices and removes a device when its node — or, unlike
//!   the C core, just its `state` node (FreeBSD's rule) — disappears, or when the toolstack
//!   reset it to Initialising under a different backend;
//! - probing reads `backend-id` and `backend`, checks that the backend exists, calls the
//!   driver, then watches `<backend>/state` and passes changes to `otherend_changed`;
//! - shutdown moves Connected devices to Closing and waits for them, at most 5 s;
//! - at boot, and when a driver registers, it waits for devices to connect: 30 s for
//!   non-essential ones, 270 s in all, with messages every 5 s.
//!
//! The `bus_type`, sysfs attributes and uevent are declared in `xenbus_rs_bus.c`.

use crate::{
    client::{self, State},
    connection,
};
use core::ptr;
use kernel::{
    bindings, new_condvar, new_spinlock,
    prelude::*,
    str::CStr,
    sync::{Arc, CondVar, CondVarTimeoutResult, SpinLock},
    time::{delay::fsleep, msecs_to_jiffies, Delta},
};

/// `XEN_BUS_ID_SIZE`: bus ids are at most 19 characters.
const BUS_ID_SIZE: usize = 20;

/// `container_of(dev, struct xenbus_device, dev)`.
pub(crate) fn xendev_of(dev: *mut bindings::device) -> *mut bindings::xenbus_device {
    dev.wrapping_byte_sub(core::mem::offset_of!(bindings::xenbus_device, dev))
        .cast()
}

/// `container_of(drv, struct xenbus_driver, driver)`.
fn xendrv_of(drv: *const bindings::device_driver) -> *mut bindings::xenbus_driver {
    drv.wrapping_byte_sub(core::mem::offset_of!(bindings::xenbus_driver, driver))
        .cast_mut()
        .cast()
}

/// `container_of(watch, struct xenbus_device, otherend_watch)`.
fn xendev_of_otherend_watch(w: *mut bindings::xenbus_watch) -> *mut bindings::xenbus_device {
    w.wrapping_byte_sub(core::mem::offset_of!(
        bindings::xenbus_device,
        otherend_watch
    ))
    .cast()
}

/// The driver-core view of a device, for `dev_*!` messages.
///
/// # Safety
///
/// `dev` is a live device for `'a`.
pub(crate) unsafe fn device<'a>(dev: *mut bindings::device) -> &'a kernel::device::Device {
    // SAFETY: Per the function's contract.
    unsafe { kernel::device::Device::from_raw(dev) }
}

/// Borrows a C string for reading; `None` for `NULL`.
///
/// # Safety
///
/// `p` is `NULL` or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn c_bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        // SAFETY: Per the function's contract.
        Some(unsafe { CStr::from_char_ptr(p) }.to_bytes())
    }
}

/// A NUL-terminated copy for calls into C.
pub(crate) fn c_string(parts: &[&[u8]]) -> Result<KVec<u8>> {
    let mut v = KVec::new();
    for p in parts {
        v.extend_from_slice(p, GFP_KERNEL)?;
    }
    v.push(0, GFP_KERNEL)?;
    Ok(v)
}

/// The `state` under `nodename`, read as `xenbus_read_driver_state` reads it (Unknown when it is
/// not a number); `None` when it cannot be read, i.e. the device is gone.
fn node_state(nodename: &[u8]) -> Option<State> {
    let raw = client::read_string(nodename, b"state").ok()?;
    Some(client::parse_int(&raw).map_or(State::Unknown, |v| {
        client::state_from_raw(v as bindings::xenbus_state)
    }))
}

/// `device/<type>/<id>` → `<type>-<id>`, if it fits `XEN_BUS_ID_SIZE`.
fn bus_id(nodename: &[u8]) -> Option<KVec<u8>> {
    let rest = nodename.splitn(2, |&b| b == b'/').nth(1)?;
    if rest.len() >= BUS_ID_SIZE || !rest.contains(&b'/') {
        pr_warn!("bad frontend {}\n", crate::watch::BStrDisplay(nodename));
        return None;
    }
    let mut id = KVec::new();
    let mut replaced = false;
    for &b in rest {
        let b = if b == b'/' && !replaced {
            replaced = true;
            b'-'
        } else {
            b
        };
        id.push(b, GFP_KERNEL).ok()?;
    }
    id.push(0, GFP_KERNEL).ok()?;
    Some(id)
}

/// Creates and registers the device for `nodename` if it is a new one: its `state` (as read
/// by the caller) is Initialising.
fn probe_node(devtype: &[u8], nodename: &[u8], state: State) -> Result {
    if state != State::Initialising {
        return Ok(()); // Not new: e.g. going away after switching to Closed.
    }
    let Some(name) = bus_id(nodename) else {
        return Err(EINVAL);
    };
    // One allocation, as the C core: the device followed by its two strings. It is freed by
    // `xenbus_rs_dev_release` with `kfree`, so it must come from kmalloc (`KVec` does).
    let size = core::mem::size_of::<bindings::xenbus_device>();
    let words = (size + nodename.len() + devtype.len() + 2).div_ceil(8);
    let mem = KVec::<u64>::from_elem(0, words, GFP_KERNEL)?;
    let (raw, _, _) = mem.into_raw_parts();
    let xendev = raw.cast::<bindings::xenbus_device>();
    // SAFETY: `raw` holds `words * 8 >= size + strings` zeroed bytes, aligned for the device.
    let strings = unsafe { raw.cast::<u8>().add(size) };
    // SAFETY: The copies stay inside the allocation (sized above) and do not overlap.
    unsafe {
        ptr::copy_nonoverlapping(nodename.as_ptr(), strings, nodename.len());
        ptr::copy_nonoverlapping(
            devtype.as_ptr(),
            strings.add(nodename.len() + 1),
            devtype.len(),
        );
        let d = &mut *xendev;
        d.nodename = strings.cast();
        d.devicetype = strings.add(nodename.len() + 1).cast();
        d.state = State::Initialising as bindings::xenbus_state;
        bindings::init_completion(&mut d.down);
        bindings::sema_init(&mut d.reclaim_sem, 1);
        d.dev.bus = &raw mut bindings::xenbus_rs_frontend_bus;
        d.dev.release = Some(bindings::xenbus_rs_dev_release);
        bindings::dev_set_name(&mut d.dev, c"%s".as_char_ptr(), name.as_ptr());
    }
    // SAFETY: The device is fully initialised; on failure `put_device` releases it (and with it
    // the allocation, through `release`).
    let err = unsafe { bindings::device_register(&mut (*xendev).dev) };
    if err != 0 {
        // SAFETY: Required after a failed `device_register`.
        unsafe { bindings::put_device(&mut (*xendev).dev) };
        return Err(Error::from_errno(err));
    }
    Ok(())
}

/// Devices of one `device/<type>`.
fn probe_type(devtype: &[u8]) -> Result {
    let dir = c_string(&[b"device/", devtype])?;
    let ids = crate::capi::directory_of(&dir)?;
    for id in ids.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        if devtype.starts_with(b"console") && id.starts_with(b"0") {
            continue; // The buggy `console/0` entry the C core ignores as well.
        }
        let mut nodename = KVec::new();
        nodename.extend_from_slice(b"device/", GFP_KERNEL)?;
        nodename.extend_from_slice(devtype, GFP_KERNEL)?;
        nodename.push(b'/', GFP_KERNEL)?;
        nodename.extend_from_slice(id, GFP_KERNEL)?;
        probe_node(
            devtype,
            &nodename,
            node_state(&nodename).unwrap_or(State::Unknown),
        )?;
    }
    Ok(())
}

/// Enumerates `device/*/*` (the notifier when xenstore comes up).
#[no_mangle]
pub(crate) extern "C" fn xenbus_rs_probe_devices() {
    let Ok(types) = crate::capi::directory_of(b"device\0") else {
        return;
    };
    for t in types.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        if let Err(e) = probe_type(t) {
            pr_warn!(
                "probing device/{} failed: {:?}\n",
                crate::watch::BStrDisplay(t),
                e
            );
        }
    }
}

/// Finds the registered device whose nodename is `nodename`, or (with `subtree`) any device at
/// or below it; returns it with a reference held.
fn find_device(nodename: &[u8], subtree: bool) -> Option<*mut bindings::xenbus_device> {
    struct Search<'a> {
        nodename: &'a [u8],
        subtree: bool,
        found: *mut bindings::xenbus_device,
    }
    /// # Safety
    ///
    /// Called by `bus_for_each_dev` with one of our devices and the `Search` below.
    unsafe extern "C" fn visit(dev: *mut bindings::device, data: *mut c_void) -> c_int {
        // SAFETY: `data` is the `Search` passed below, alive for the whole iteration.
        let s = unsafe { &mut *data.cast::<Search<'_>>() };
        let xendev = xendev_of(dev);
        // SAFETY: Every device on our bus is a `xenbus_device` with a NUL-terminated nodename.
        let Some(name) = (unsafe { c_bytes((*xendev).nodename) }) else {
            return 0;
        };
        let hit = if s.subtree {
            name.starts_with(s.nodename)
                && (name.len() == s.nodename.len() || name.get(s.nodename.len()) == Some(&b'/'))
        } else {
            name == s.nodename
        };
        if hit {
            // SAFETY: `dev` is a live device (bus iteration holds it); we take our own reference.
            unsafe { bindings::get_device(dev) };
            s.found = xendev;
            return 1;
        }
        0
    }
    let mut s = Search {
        nodename,
        subtree,
        found: ptr::null_mut(),
    };
    // SAFETY: The bus is registered; `visit` matches the expected signature and only uses `s`.
    unsafe {
        bindings::bus_for_each_dev(
            &raw const bindings::xenbus_rs_frontend_bus,
            ptr::null_mut(),
            (&raw mut s).cast(),
            Some(visit),
        )
    };
    (!s.found.is_null()).then_some(s.found)
}

/// Unregisters a device and drops the reference `find_device` took.
fn remove_device(xendev: *mut bindings::xenbus_device) {
    // SAFETY: `xendev` is registered and we hold a reference (from `find_device`).
    unsafe {
        (*xendev).vanished = true;
        bindings::device_unregister(&mut (*xendev).dev);
        bindings::put_device(&mut (*xendev).dev);
    }
    device_state_changed();
}

/// The watch on `device`: something below it changed.
///
/// # Safety
///
/// Called from the glue's watch callback with the event's NUL-terminated path.
#[no_mangle]
pub(crate) unsafe extern "C" fn xenbus_rs_frontend_changed(path: *const c_char) {
    // SAFETY: The watch dispatcher passes the event's NUL-terminated path.
    let Some(path) = (unsafe { c_bytes(path) }) else {
        return;
    };
    let mut parts = path.splitn(4, |&b| b == b'/');
    let (Some(_root), Some(devtype), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return; // `device` or `device/<type>`: nothing to do.
    };
    if devtype.is_empty() || id.is_empty() {
        return;
    }
    let root_len = b"device/".len() + devtype.len() + 1 + id.len();
    let root = path.get(..root_len).unwrap_or(path);
    // Whether a device exists, is new or was reset by the toolstack is decided by its node,
    // its `state` and its `backend-id` alone. The other nodes below it (the ring references,
    // event channels and features the frontend writes, the toolstack's other entries) change
    // none of that, so their events need no round trip; the C core spends three on each. A
    // change that matters always comes with an event for one of those three paths: xenstored
    // sends one per changed node, also for the nodes of one transaction, and one for the
    // removed node itself on removal.
    if let Some(below) = path.get(root_len + 1..) {
        if !below.is_empty() && below != b"state" && below != b"backend-id" {
            return;
        }
    }
    // One round trip tells both whether the device is still there (a device has a `state`
    // node) and its state; the C core asks for the node's existence first.
    let Some(state) = node_state(root) else {
        // The node (or its `state`) is gone: remove the device and anything below, with the C
        // core's message (which it prints at the end of every hot-unplug too).
        let mut next = find_device(root, true);
        while let Some(dev) = next {
            // SAFETY: We hold a reference to `dev` (from `find_device`).
            let d = unsafe { crate::bus::device(&raw mut (*dev).dev) };
            // The C core's words, with its "xenbus: " prefix.
            dev_warn!(d, "xenbus: device forcefully removed from xenstore\n");
            remove_device(dev);
            next = find_device(root, true);
        }
        return;
    };
    if let Some(dev) = find_device(root, false) {
        // A new instance of the same device: the toolstack reset the state to Initialising,
        // possibly under another backend (e.g. after a backend domain crashed).
        // SAFETY: We hold a reference to `dev`.
        let (local, otherend, otherend_id) =
            unsafe { ((*dev).state, (*dev).otherend, (*dev).otherend_id) };
        // Only a device reading Initialising needs its backend's id (a reset, or one not yet
        // past its probe): the C core reads it on every event.
        let backend = if state == State::Initialising {
            crate::client::read_unsigned(root, b"backend-id").unwrap_or(otherend_id as u32)
        } else {
            otherend_id as u32
        };
        let reset = state == State::Initialising
            && (state as bindings::xenbus_state != local
                || (!otherend.is_null() && backend != otherend_id as u32));
        // SAFETY: As above.
        let vanished = unsafe { (*dev).vanished };
        if reset || vanished {
            if reset {
                // SAFETY: As above.
                let d = unsafe { crate::bus::device(&raw mut (*dev).dev) };
                dev_warn!(
                    d,
                    "xenbus: state reset occurred (xenstore state {}, local state {}, xenstore backend {}, local backend {}), reconnecting\n",
                    state as u32, local, backend, otherend_id
                );
            }
            remove_device(dev);
        } else {
            // SAFETY: Drops the reference `find_device` took.
            unsafe { bindings::put_device(&mut (*dev).dev) };
            return;
        }
    }
    if let Err(e) = probe_node(devtype, root, state) {
        pr_warn!(
            "adding {} failed: {:?}\n",
            crate::watch::BStrDisplay(root),
            e
        );
    }
}

/// The driver bound to `xendev` (only valid while bound).
///
/// # Safety
///
/// `xendev` has a driver.
unsafe fn driver_of(xendev: *mut bindings::xenbus_device) -> *mut bindings::xenbus_driver {
    // SAFETY: Per the function's contract.
    xendrv_of(unsafe { (*xendev).dev.driver })
}

fn free_otherend_watch(xendev: *mut bindings::xenbus_device) {
    // SAFETY: Called with a live device; the watch is ours (bus probe/remove serialise).
    unsafe {
        let w = &raw mut (*xendev).otherend_watch;
        if !(*w).node.is_null() {
            crate::capi::unregister_xenbus_watch(w);
            bindings::kfree((*w).node.cast());
            (*w).node = ptr::null();
        }
    }
}

fn free_otherend_details(xendev: *mut bindings::xenbus_device) {
    // SAFETY: `otherend` is NULL or a kmalloc'ed string we own.
    unsafe {
        bindings::kfree((*xendev).otherend.cast());
        (*xendev).otherend = ptr::null();
    }
}

/// `read_otherend_details` of frontends: `backend-id` and `backend`, which must exist.
///
/// # Safety
///
/// Called by the bus with one of its devices, during probe or restore.
pub(crate) unsafe extern "C" fn read_backend_details(
    xendev: *mut bindings::xenbus_device,
) -> c_int {
    // SAFETY: The bus passes one of its devices.
    let nodename = unsafe { c_bytes((*xendev).nodename) }.unwrap_or(&[]);
    let id = crate::client::read_int(nodename, b"backend-id");
    let backend = crate::client::read_string(nodename, b"backend");
    let (id, backend) = match (id, backend) {
        (Ok(id), Ok(backend)) => (id, backend),
        (Err(e), _) | (_, Err(e)) => {
            crate::client::dev_fatal(
                xendev,
                e,
                fmt!(
                    "reading other end details from {}",
                    crate::watch::BStrDisplay(nodename)
                ),
            );
            return e.to_errno();
        }
    };
    let backend_bytes = crate::watch::without_nul(&backend);
    let exists = !backend_bytes.is_empty() && {
        // SAFETY: `backend` is NUL-terminated.
        unsafe {
            crate::capi::xenbus_exists(
                bindings::xenbus_transaction { id: 0 },
                backend.as_ptr().cast(),
                c"".as_char_ptr(),
            ) != 0
        }
    };
    if !exists {
        crate::client::dev_fatal(
            xendev,
            ENOENT,
            fmt!(
                "unable to read other end from {}.  missing or inaccessible.",
                crate::watch::BStrDisplay(nodename)
            ),
        );
        return ENOENT.to_errno();
    }
    let Ok(otherend) = crate::capi::kmalloc_c_string(backend_bytes) else {
        return ENOMEM.to_errno();
    };
    // SAFETY: The device is ours to update during probe.
    unsafe {
        (*xendev).otherend_id = id;
        (*xendev).otherend = otherend;
    }
    0
}

fn talk_to_otherend(xendev: *mut bindings::xenbus_device) -> c_int {
    free_otherend_watch(xendev);
    free_otherend_details(xendev);
    // SAFETY: Called while the driver is bound (probe, restore).
    let drv = unsafe { driver_of(xendev) };
    // SAFETY: `drv` is the bound driver.
    match unsafe { (*drv).read_otherend_details } {
        // SAFETY: The driver's hook takes the device.
        Some(read) => unsafe { read(xendev) },
        None => ENODEV.to_errno(),
    }
}

/// The other end's `state` changed.
///
/// # Safety
///
/// Registered only as the callback of a bound device's `otherend_watch`.
unsafe extern "C" fn backend_changed(
    watch: *mut bindings::xenbus_watch,
    path: *const c_char,
    _token: *const c_char,
) {
    let xendev = xendev_of_otherend_watch(watch);
    // SAFETY: This callback is only registered on `otherend_watch` of a bound device, and
    // unregistered before the device goes away; the path is NUL-terminated.
    let (otherend, path) = unsafe { (c_bytes((*xendev).otherend), c_bytes(path)) };
    // Ignore events on old details (e.g. right after a resume).
    let (Some(otherend), Some(path)) = (otherend, path) else {
        return;
    };
    if !path.starts_with(otherend) {
        return;
    }
    let raw = client::read_raw_state_of(xendev, otherend);
    let state = client::state_from_raw(raw);
    if State::from_u32(raw).is_none() {
        // Passed on unchanged, as the C core does; drivers ignore states they do not know.
        // A backend can write this as often as it likes: the first few are reported.
        static REPORTED: kernel::sync::atomic::Atomic<u32> = kernel::sync::atomic::Atomic::new(0);
        if REPORTED.fetch_add(1, kernel::sync::atomic::Relaxed) < 10 {
            // SAFETY: `xendev` is a bound device.
            let d = unsafe { crate::bus::device(&raw mut (*xendev).dev) };
            dev_warn!(
                d,
                "backend {} reports invalid state {} (passed on)\n",
                crate::watch::BStrDisplay(otherend),
                raw
            );
        }
    }
    // SAFETY: Reads a global.
    if unsafe { bindings::system_state } > bindings::system_states_SYSTEM_RUNNING {
        // During shutdown only acknowledge Closing, so that backends can finish.
        if state == State::Closing {
            // SAFETY: `xendev` is a bound device.
            unsafe { client::xenbus_frontend_closed(xendev) };
        }
        return;
    }
    // SAFETY: The device is bound while its otherend watch exists.
    let drv = unsafe { driver_of(xendev) };
    // SAFETY: `drv` is the bound driver.
    if let Some(changed) = unsafe { (*drv).otherend_changed } {
        // SAFETY: The driver's hook takes the device and a state value.
        unsafe { changed(xendev, raw) };
    }
    device_state_changed();
}

fn watch_otherend(xendev: *mut bindings::xenbus_device) -> c_int {
    // SAFETY: `otherend` was set by `talk_to_otherend`.
    let Some(otherend) = (unsafe { c_bytes((*xendev).otherend) }) else {
        return ENOENT.to_errno();
    };
    let Ok(path) = crate::capi::kmalloc_c_string_parts(&[otherend, b"/state"]) else {
        return ENOMEM.to_errno();
    };
    // SAFETY: `path` is kmalloc'ed and owned by the watch from now on (freed in
    // `free_otherend_watch`, or here on failure).
    let err = unsafe {
        client::xenbus_watch_path(
            xendev,
            path,
            &raw mut (*xendev).otherend_watch,
            None,
            Some(backend_changed),
        )
    };
    if err != 0 {
        // SAFETY: `xenbus_watch_path` does not keep `path` on failure.
        unsafe { bindings::kfree(path.cast()) };
    }
    err
}

/// Runs the driver's `remove` under the reclaim semaphore, as the C core does, then drops the
/// module reference that probe took.
///
/// # Safety
///
/// `drv` is the live driver whose probe of the live `xendev` succeeded after taking a module
/// reference.
unsafe fn remove_and_put(drv: *mut bindings::xenbus_driver, xendev: *mut bindings::xenbus_device) {
    // SAFETY: Per the function's contract.
    unsafe {
        if let Some(remove) = (*drv).remove {
            bindings::down(&mut (*xendev).reclaim_sem);
            remove(xendev);
            bindings::up(&mut (*xendev).reclaim_sem);
        }
        bindings::module_put((*drv).driver.owner);
    }
}

/// `bus_type.probe`.
///
/// # Safety
///
/// Called by the driver core with a device of this bus.
#[no_mangle]
pub(crate) unsafe extern "C" fn xenbus_rs_dev_probe(dev: *mut bindings::device) -> c_int {
    let xendev = xendev_of(dev);
    // SAFETY: The driver core probes devices of our bus with a matched driver.
    let drv = unsafe { driver_of(xendev) };
    // SAFETY: `drv` and `xendev` are live.
    let id = unsafe { bindings::xenbus_rs_match_id(drv, xendev) };
    // SAFETY: `drv` is live.
    let probe = unsafe { (*drv).probe };
    let (Some(probe), false) = (probe, id.is_null()) else {
        client::dev_error(xendev, ENODEV, fmt!("xenbus_dev_probe on device"));
        return ENODEV.to_errno();
    };
    let err = talk_to_otherend(xendev);
    if err != 0 {
        // SAFETY: `dev` is live.
        let d = unsafe { crate::bus::device(dev) };
        dev_warn!(d, "talk_to_otherend failed: {}\n", err);
        return err;
    }
    // SAFETY: `drv` is live; `owner` may be NULL (built-in).
    if !unsafe { bindings::xen_try_module_get((*drv).driver.owner) } {
        client::dev_error(xendev, ESRCH, fmt!("failed to acquire module reference"));
        return ESRCH.to_errno();
    }
    // SAFETY: Probe runs the driver under the reclaim semaphore, as the C core does.
    let err = unsafe {
        bindings::down(&mut (*xendev).reclaim_sem);
        let err = probe(xendev, id);
        bindings::up(&mut (*xendev).reclaim_sem);
        err
    };
    if err != 0 {
        // SAFETY: Drops the reference taken above.
        unsafe { bindings::module_put((*drv).driver.owner) };
        client::dev_error(
            xendev,
            Error::from_errno(err),
            fmt!("xenbus_dev_probe on device"),
        );
        return err;
    }
    let err = watch_otherend(xendev);
    if err != 0 {
        // SAFETY: The driver's probe succeeded and took the module reference above.
        unsafe { remove_and_put(drv, xendev) };
        return err;
    }
    // SAFETY: The device is bound and ours to update.
    unsafe {
        (*xendev).spurious_threshold = 1;
        if bindings::xenbus_rs_add_stat_group(xendev) != 0 {
            let d = crate::bus::device(dev);
            dev_warn!(d, "sysfs_create_group failed\n");
        }
    }
    0
}

/// `bus_type.remove`.
///
/// # Safety
///
/// Called by the driver core with a device of this bus.
#[no_mangle]
pub(crate) unsafe extern "C" fn xenbus_rs_dev_remove(dev: *mut bindings::device) {
    let xendev = xendev_of(dev);
    // SAFETY: The driver core removes bound devices of our bus.
    let drv = unsafe { driver_of(xendev) };
    // SAFETY: As above.
    unsafe { bindings::xenbus_rs_remove_stat_group(xendev) };
    free_otherend_watch(xendev);
    // SAFETY: The device is bound to `drv`, whose probe took the module reference.
    unsafe { remove_and_put(drv, xendev) };
    free_otherend_details(xendev);
    // If the toolstack forced Closing, or the driver cannot rebind, say Closed so that the
    // device can be cleaned up.
    // SAFETY: `drv` is still valid here; `nodename` is ours.
    let (allow_rebind, nodename) = unsafe {
        (
            (*drv).allow_rebind,
            c_bytes((*xendev).nodename).unwrap_or(&[]),
        )
    };
    if !allow_rebind || client::read_state_of(xendev, nodename) == State::Closing {
        // SAFETY: `xendev` is live.
        unsafe { client::xenbus_switch_state(xendev, State::Closed as bindings::xenbus_state) };
    }
}

/// `bus_type.shutdown`: Connected devices go to Closing and get up to 5 s to close.
///
/// # Safety
///
/// Called by the driver core with a device of this bus.
#[no_mangle]
pub(crate) unsafe extern "C" fn xenbus_rs_dev_shutdown(dev: *mut bindings::device) {
    let xendev = xendev_of(dev);
    // SAFETY: `dev` is one of our devices; hold it for the duration.
    unsafe { bindings::get_device(dev) };
    // SAFETY: As above.
    let (state, nodename) =
        unsafe { ((*xendev).state, c_bytes((*xendev).nodename).unwrap_or(&[])) };
    if state != State::Connected as bindings::xenbus_state {
        pr_info!(
            "{}: {} != Connected, skipping\n",
            crate::watch::BStrDisplay(nodename),
            client::state_name(state)
        );
    } else {
        // SAFETY: `xendev` is live (reference held).
        unsafe { client::xenbus_switch_state(xendev, State::Closing as bindings::xenbus_state) };
        // SAFETY: As above.
        let left = unsafe {
            bindings::wait_for_completion_timeout(
                &mut (*xendev).down,
                kernel::time::msecs_to_jiffies(5000),
            )
        };
        if left == 0 {
            pr_info!(
                "{}: timeout closing device\n",
                crate::watch::BStrDisplay(nodename)
            );
        }
    }
    // SAFETY: Drops the reference taken above.
    unsafe { bindings::put_device(dev) };
}

/// `dev_pm_ops.freeze` (save/migrate): tell the driver.
///
/// # Safety
///
/// Called by the driver core with a device of this bus.
#[no_mangle]
pub(crate) unsafe extern "C" fn xenbus_rs_dev_freeze(dev: *mut bindings::device) -> c_int {
    // SAFETY: `dev` is one of our devices.
    if unsafe { (*dev).driver }.is_null() {
        return 0;
    }
    let xendev = xendev_of(dev);
    // SAFETY: The device is bound.
    let drv = unsafe { driver_of(xendev) };
    // SAFETY: As above.
    if let Some(suspend) = unsafe { (*drv).suspend } {
        // SAFETY: The driver's hook takes the device.
        let err = unsafe { suspend(xendev) };
        if err != 0 {
            // SAFETY: `dev` is live.
            let d = unsafe { crate::bus::device(dev) };
            dev_warn!(d, "freeze failed: {}\n", err);
        }
    }
    0
}

/// `dev_pm_ops.thaw`: nothing to do (the suspend was cancelled).
#[no_mangle]
pub(crate) extern "C" fn xenbus_rs_dev_thaw(_dev: *mut bindings::device) -> c_int {
    0
}

/// `dev_pm_ops.restore` (after restore or migration): new backend details, then the driver.
///
/// # Safety
///
/// Called by the driver core with a device of this bus.
#[no_mangle]
pub(crate) unsafe extern "C" fn xenbus_rs_dev_restore(dev: *mut bindings::device) -> c_int {
    // SAFETY: `dev` is one of our devices.
    if unsafe { (*dev).driver }.is_null() {
        return 0;
    }
    let xendev = xendev_of(dev);
    let err = talk_to_otherend(xendev);
    if err != 0 {
        return err;
    }
    // SAFETY: The device is bound.
    unsafe { (*xendev).state = State::Initialising as bindings::xenbus_state };
    // SAFETY: As above.
    let drv = unsafe { driver_of(xendev) };
    // SAFETY: As above.
    if let Some(resume) = unsafe { (*drv).resume } {
        // SAFETY: The driver's hook takes the device.
        let err = unsafe { resume(xendev) };
        if err != 0 {
            return err;
        }
    }
    watch_otherend(xendev)
}

/// Registers a frontend driver (`xenbus_register_frontend`), then, like the C core, waits for
/// its devices to connect.
///
/// # Safety
///
/// `drv` is valid and stays registered until `xenbus_unregister_driver`.
#[export]
pub(crate) unsafe extern "C" fn __xenbus_register_frontend(
    drv: *mut bindings::xenbus_driver,
    owner: *mut bindings::module,
    mod_name: *const c_char,
) -> c_int {
    if drv.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: `drv` is valid (contract); the name defaults to the first device type.
    let err = unsafe {
        let d = &mut *drv;
        d.read_otherend_details = Some(read_backend_details);
        d.driver.name = if d.name.is_null() && !d.ids.is_null() {
            (*d.ids).devicetype.as_ptr()
        } else {
            d.name
        };
        d.driver.bus = &raw mut bindings::xenbus_rs_frontend_bus;
        d.driver.owner = owner;
        d.driver.mod_name = mod_name;
        bindings::driver_register(&mut d.driver)
    };
    if err != 0 {
        return err;
    }
    wait_for_devices(drv);
    0
}

/// Unregisters a frontend driver.
///
/// # Safety
///
/// `drv` was registered with `__xenbus_register_frontend`.
#[export]
pub(crate) unsafe extern "C" fn xenbus_unregister_driver(drv: *mut bindings::xenbus_driver) {
    if !drv.is_null() {
        // SAFETY: Per the function's contract.
        unsafe { bindings::driver_unregister(&mut (*drv).driver) };
    }
}

static READY_TO_WAIT: kernel::sync::atomic::Atomic<bool> = kernel::sync::atomic::Atomic::new(false);

/// Whether some device (of `drv`, or any) is still connecting.
fn connecting(drv: *mut bindings::xenbus_driver, ignore_nonessential: bool) -> bool {
    struct Ask {
        drv: *const bindings::device_driver,
        ignore_nonessential: bool,
    }
    /// # Safety
    ///
    /// Called by `bus_for_each_dev` with one of our devices and the `Ask` below.
    unsafe extern "C" fn visit(dev: *mut bindings::device, data: *mut c_void) -> c_int {
        // SAFETY: `data` is the `Ask` below; `dev` is a live device of our bus.
        let (ask, driver) = unsafe { (&*data.cast::<Ask>(), (*dev).driver) };
        if driver.is_null() || (!ask.drv.is_null() && !core::ptr::eq(driver, ask.drv)) {
            return 0;
        }
        let xendrv = xendrv_of(driver);
        let xendev = xendev_of(dev);
        // SAFETY: Bound device and its driver.
        unsafe {
            if ask.ignore_nonessential && (*xendrv).not_essential {
                return 0;
            }
            let state = (*xendev).state;
            let connected = State::Connected as bindings::xenbus_state;
            let not_ready =
                state == connected && (*xendrv).is_ready.is_some_and(|ready| ready(xendev) == 0);
            c_int::from(state < connected || not_ready)
        }
    }
    let ask = Ask {
        // SAFETY: `drv` is NULL or a registered driver.
        drv: if drv.is_null() {
            ptr::null()
        } else {
            // SAFETY: `drv` is a registered driver; only the field's address is taken.
            unsafe { &raw const (*drv).driver }
        },
        ignore_nonessential,
    };
    // SAFETY: The bus is registered; `visit` only reads.
    unsafe {
        bindings::bus_for_each_dev(
            &raw const bindings::xenbus_rs_frontend_bus,
            ptr::null_mut(),
            (&raw const ask).cast_mut().cast(),
            Some(visit),
        ) != 0
    }
}

/// Changes of the devices' states, for [`wait_for_devices`]: it ends as soon as the last device
/// connects instead of at its next check (the C core looks every 100 ms, which is still the
/// longest wait here, for readiness that no state change announces).
#[pin_data]
pub(crate) struct DeviceStates {
    #[pin]
    generation: SpinLock<u64>,
    #[pin]
    changed: CondVar,
}

impl DeviceStates {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                generation <- new_spinlock!(0, "xenbus_rs_device_states"),
                changed <- new_condvar!("xenbus_rs_device_states_changed"),
            }),
            GFP_KERNEL,
        )
    }

    fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    fn changed(&self) {
        let mut generation = self.generation.lock();
        *generation = generation.wrapping_add(1);
        self.changed.notify_all();
    }

    /// Sleeps until a change after generation `seen`, for at most `timeout`.
    fn wait(&self, seen: u64, timeout: Delta) {
        let mut generation = self.generation.lock();
        if *generation != seen {
            return;
        }
        let jiffies = msecs_to_jiffies(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        if let CondVarTimeoutResult::Signal { .. } = self
            .changed
            .wait_interruptible_timeout(&mut generation, jiffies)
        {
            // `insmod` may have a signal pending: sleep anyway rather than spin.
            drop(generation);
            fsleep(timeout);
        }
    }
}

/// A device's state (ours or the other end's) may have changed: see [`wait_for_devices`].
pub(crate) fn device_state_changed() {
    if let Some(core) = connection::get() {
        core.device_states.changed();
    }
}

fn wait_for_devices(drv: *mut bindings::xenbus_driver) {
    use kernel::sync::atomic::Relaxed;
    const LOOK_AGAIN: Delta = Delta::from_millis(100);
    if !READY_TO_WAIT.load(Relaxed) || !kernel::xen::is_xen_domain() {
        return;
    }
    let Some(core) = connection::get() else {
        return;
    };
    let states = &core.device_states;
    let start = kernel::time::Instant::<kernel::time::Monotonic>::now();
    let mut waited = 0i64;
    // Non-essential devices get 30 s, everything 270 s; a message every 5 s.
    for (ignore_nonessential, limit) in [(false, 30i64), (true, 270i64)] {
        loop {
            // Read before looking, so that a change in between cuts the wait short.
            let seen = states.generation();
            if !connecting(drv, ignore_nonessential) {
                break;
            }
            let elapsed = start.elapsed().as_millis() / 1000;
            if elapsed >= waited + 5 {
                waited += 5;
                pr_warn!("Waiting for devices to initialise: {}s...\n", 270 - waited);
                if waited >= limit {
                    break;
                }
            }
            states.wait(seen, LOOK_AGAIN);
        }
    }
    report_device_status(drv);
}

fn report_device_status(drv: *mut bindings::xenbus_driver) {
    /// # Safety
    ///
    /// Called by `bus_for_each_dev` with one of our devices.
    unsafe extern "C" fn visit(dev: *mut bindings::device, data: *mut c_void) -> c_int {
        let only: *const bindings::device_driver = data.cast();
        // SAFETY: `dev` is a live device of our bus.
        let driver = unsafe { (*dev).driver };
        if !only.is_null() && !core::ptr::eq(driver, only) {
            return 0;
        }
        let xendev = xendev_of(dev);
        // SAFETY: As above.
        let (state, nodename, otherend) = unsafe {
            (
                (*xendev).state,
                c_bytes((*xendev).nodename).unwrap_or(&[]),
                c_bytes((*xendev).otherend),
            )
        };
        if driver.is_null() {
            pr_info!(
                "Device with no driver: {}\n",
                crate::watch::BStrDisplay(nodename)
            );
        } else if state < State::Connected as bindings::xenbus_state {
            let remote = otherend
                .map(|o| client::read_state_of(xendev, o))
                .unwrap_or(State::Unknown);
            pr_warn!(
                "Timeout connecting to device: {} (local state {}, remote state {})\n",
                crate::watch::BStrDisplay(nodename),
                state,
                remote as u32
            );
        }
        0
    }
    let only: *mut c_void = if drv.is_null() {
        ptr::null_mut()
    } else {
        // SAFETY: `drv` is a registered driver.
        unsafe { (&raw mut (*drv).driver).cast() }
    };
    // SAFETY: The bus is registered; `visit` only reads.
    unsafe {
        bindings::bus_for_each_dev(
            &raw const bindings::xenbus_rs_frontend_bus,
            ptr::null_mut(),
            only,
            Some(visit),
        )
    };
}

/// `late_initcall`: wait for the devices present at boot.
#[no_mangle]
pub(crate) extern "C" fn xenbus_rs_boot_wait_for_devices() {
    READY_TO_WAIT.store(true, kernel::sync::atomic::Relaxed);
    wait_for_devices(ptr::null_mut());
}
