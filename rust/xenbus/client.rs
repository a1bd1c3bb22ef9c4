// SPDX-License-Identifier: GPL-2.0

//! Helpers for frontend drivers (the C core's `xenbus_client.c`): state changes, watches on
//! paths, shared rings granted to the backend, event channels, error reporting.

use crate::bus::{c_bytes, c_string};
use core::ptr;
use kernel::{bindings, fmt, prelude::*, str::CString, xen::xenstore::proto::state};

pub(crate) use state::XenbusState as State;

/// Xen pages are 4 KiB whatever the kernel's page size.
const XEN_PAGE_SIZE: usize = 4096;
/// `XENBUS_MAX_RING_GRANTS`.
const MAX_RING_GRANTS: u32 = 16;
/// `INVALID_GRANT_REF`.
const INVALID_GRANT_REF: bindings::grant_ref_t = bindings::grant_ref_t::MAX;
/// `DOMID_SELF`.
const DOMID_SELF: bindings::domid_t = 0x7ff0;

/// A state value from C; anything out of range reads as Unknown.
pub(crate) fn state_from_raw(v: bindings::xenbus_state) -> State {
    State::from_u32(v).unwrap_or(State::Unknown)
}

/// The name of a state value, as `xenbus_strstate` gives it.
pub(crate) fn state_name(v: bindings::xenbus_state) -> &'static str {
    state::strstate(v)
}

/// Reads `dir/node` as a value.
pub(crate) fn read_string(dir: &[u8], node: &[u8]) -> Result<KVec<u8>> {
    let path = c_string(&[dir, b"/", node])?;
    let c = crate::connection::get().ok_or(ENODEV)?;
    let mut v = c.store.read(
        0,
        crate::watch::without_nul(&path),
        crate::request::WaitMode::Uninterruptible,
    )?;
    v.push(0, GFP_KERNEL)?;
    Ok(v)
}

/// Reads `dir/node` as a decimal integer (`%i`-like: optional sign, digits).
pub(crate) fn read_int(dir: &[u8], node: &[u8]) -> Result<c_int> {
    parse_int(&read_string(dir, node)?)
}

/// A value as `read_int` reads it, `%i`-like: optional sign, digits, anything after ignored.
pub(crate) fn parse_int(v: &[u8]) -> Result<c_int> {
    let s = crate::watch::without_nul(v);
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    let digits: &[u8] = {
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        digits.get(..end).unwrap_or(&[])
    };
    if digits.is_empty() {
        return Err(EINVAL);
    }
    let mut n: i64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(i64::from(d - b'0')))
            .ok_or(ERANGE)?;
    }
    let n = if neg { -n } else { n };
    c_int::try_from(n).map_err(|_| ERANGE)
}

/// Reads `dir/node` as an unsigned decimal.
pub(crate) fn read_unsigned(dir: &[u8], node: &[u8]) -> Option<u32> {
    read_int(dir, node).ok().and_then(|v| u32::try_from(v).ok())
}

/// The state under `path` for `xendev` (Unknown once the device vanished).
pub(crate) fn read_state_of(xendev: *const bindings::xenbus_device, path: &[u8]) -> State {
    state_from_raw(read_raw_state_of(xendev, path))
}

/// The `state` value under `path` as written there, like the C core's `%d` (drivers get
/// out-of-range values unchanged); Unknown if it cannot be read or the device vanished.
pub(crate) fn read_raw_state_of(xendev: *const bindings::xenbus_device, path: &[u8]) -> u32 {
    // SAFETY: `xendev` is NULL or a live device.
    if !xendev.is_null() && unsafe { (*xendev).vanished } {
        return State::Unknown.as_u32();
    }
    match read_int(path, b"state") {
        Ok(v) => v as u32,
        Err(_) => State::Unknown.as_u32(),
    }
}

/// `xenbus_strstate`.
#[export]
pub(crate) extern "C" fn xenbus_strstate(state: bindings::xenbus_state) -> *const c_char {
    // Static, NUL-terminated names (the C core's table).
    const NAMES: [&CStr; 9] = [
        c"Unknown",
        c"Initialising",
        c"InitWait",
        c"Initialised",
        c"Connected",
        c"Closing",
        c"Closed",
        c"Reconfiguring",
        c"Reconfigured",
    ];
    NAMES
        .get(state as usize)
        .copied()
        .unwrap_or(c"INVALID")
        .as_char_ptr()
}

/// `xenbus_read_driver_state`: the `state` under `path` (Unknown if unreadable).
///
/// # Safety
///
/// `dev` is `NULL` or a live device; `path` a NUL-terminated string.
#[export]
pub(crate) unsafe extern "C" fn xenbus_read_driver_state(
    dev: *const bindings::xenbus_device,
    path: *const c_char,
) -> bindings::xenbus_state {
    // SAFETY: Per the function's contract.
    let Some(path) = (unsafe { c_bytes(path) }) else {
        return State::Unknown.as_u32();
    };
    read_raw_state_of(dev, path)
}

/// Reports an error: kernel log and `error/<nodename>/error` in xenstore.
pub(crate) fn dev_error(
    xendev: *mut bindings::xenbus_device,
    err: Error,
    args: fmt::Arguments<'_>,
) {
    // SAFETY: Callers pass live devices.
    let nodename = unsafe { c_bytes((*xendev).nodename) }.unwrap_or(&[]);
    // SAFETY: As above.
    let dev = unsafe { crate::bus::device(&raw mut (*xendev).dev) };
    let Ok(msg) = CString::try_from_fmt(fmt!("{} {}", -err.to_errno(), args)) else {
        return;
    };
    dev_err!(dev, "{}\n", msg.to_str().unwrap_or("(message not UTF-8)"));
    if let (Ok(dir), Some(c)) = (
        c_string(&[b"error/", nodename, b"/error"]),
        crate::connection::get(),
    ) {
        let _ = c.store.write(
            0,
            crate::watch::without_nul(&dir),
            msg.to_bytes(),
            crate::request::WaitMode::Uninterruptible,
        );
    }
}

/// Like [`dev_error`], then switches the device to Closing.
pub(crate) fn dev_fatal(
    xendev: *mut bindings::xenbus_device,
    err: Error,
    args: fmt::Arguments<'_>,
) {
    dev_error(xendev, err, args);
    // SAFETY: Callers pass live devices.
    unsafe { xenbus_switch_state(xendev, State::Closing.as_u32()) };
}

/// Called by the C glue's variadic `xenbus_dev_error`/`xenbus_dev_fatal` with the formatted
/// message.
///
/// # Safety
///
/// `xendev` is a live device and `msg` a NUL-terminated string.
#[no_mangle]
pub(crate) unsafe extern "C" fn xenbus_rs_dev_error(
    xendev: *mut bindings::xenbus_device,
    err: c_int,
    msg: *const c_char,
) {
    // SAFETY: The glue passes a live device and a NUL-terminated message.
    let msg = unsafe { c_bytes(msg) }.unwrap_or(&[]);
    dev_error(
        xendev,
        Error::from_errno(-err.abs().max(1)),
        fmt!("{}", crate::watch::BStrDisplay(msg)),
    );
}

/// Registers `watch` on `path` for a device; on failure the device is failed.
///
/// # Safety
///
/// `dev` is live; `path` stays valid while the watch is registered; `watch` as for
/// `register_xenbus_watch`.
#[export]
pub(crate) unsafe extern "C" fn xenbus_watch_path(
    dev: *mut bindings::xenbus_device,
    path: *const c_char,
    watch: *mut bindings::xenbus_watch,
    will_handle: Option<
        unsafe extern "C" fn(*mut bindings::xenbus_watch, *const c_char, *const c_char) -> bool,
    >,
    callback: Option<
        unsafe extern "C" fn(*mut bindings::xenbus_watch, *const c_char, *const c_char),
    >,
) -> c_int {
    // SAFETY: Per the function's contract.
    unsafe {
        (*watch).node = path;
        (*watch).will_handle = will_handle;
        (*watch).callback = callback;
    }
    // SAFETY: As above.
    let err = unsafe { crate::capi::register_xenbus_watch(watch) };
    if err != 0 {
        // SAFETY: As above.
        unsafe {
            (*watch).node = ptr::null();
            (*watch).will_handle = None;
            (*watch).callback = None;
        }
        // SAFETY: `path` is NUL-terminated.
        let p = unsafe { c_bytes(path) }.unwrap_or(&[]);
        dev_fatal(
            dev,
            Error::from_errno(err),
            fmt!("adding watch on {}", crate::watch::BStrDisplay(p)),
        );
    }
    err
}

/// Writes the device's new state in a transaction, retried on `EAGAIN`. Nothing is written if
/// the state is unchanged, if the node is gone (the device is being torn down) or if the
/// toolstack reset it to Initialising meanwhile (the device vanished).
fn switch_state(xendev: *mut bindings::xenbus_device, new: u32, depth: u32) {
    // SAFETY: Callers pass live devices.
    let (current, vanished, nodename) = unsafe {
        (
            (*xendev).state,
            (*xendev).vanished,
            c_bytes((*xendev).nodename).unwrap_or(&[]),
        )
    };
    if new == current || vanished {
        return;
    }
    let Some(c) = crate::connection::get() else {
        return;
    };
    let Ok(path) = c_string(&[nodename, b"/state"]) else {
        return;
    };
    let path = crate::watch::without_nul(&path);
    let mode = crate::request::WaitMode::Uninterruptible;
    const ATTEMPTS: u32 = 100;
    for _ in 0..ATTEMPTS {
        let tx = match c.store.transaction_start(mode) {
            Ok(tx) => tx,
            Err(e) => return switch_fatal(xendev, depth, e, "starting transaction"),
        };
        let mut commit = false;
        let mut reset = false;
        match c
            .store
            .read(tx, path, mode)
            .ok()
            .and_then(|v| parse_state(&v))
        {
            None => {} // The node is gone: do not resurrect it.
            Some(s) if s != current && s == State::Initialising.as_u32() => reset = true,
            Some(_) => {
                let mut value = [0u8; 10];
                let text = state::XenbusState::from_u32(new)
                    .map(|s| s.as_value())
                    .unwrap_or_else(|| decimal(new, &mut value));
                match c.store.write(tx, path, text, mode) {
                    Ok(()) => commit = true,
                    Err(e) => switch_fatal(xendev, depth, e, "writing new state"),
                }
            }
        }
        match c.store.transaction_end(tx, commit, mode) {
            Err(e) if e == EAGAIN && commit => continue,
            Err(e) => return switch_fatal(xendev, depth, e, "ending transaction"),
            Ok(()) => {
                if !reset {
                    // SAFETY: `xendev` is live; the cached state is ours.
                    unsafe { (*xendev).state = new };
                    crate::bus::device_state_changed();
                }
                return;
            }
        }
    }
    switch_fatal(xendev, depth, EAGAIN, "too many transaction conflicts");
}

fn parse_state(v: &[u8]) -> Option<u32> {
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    let s = core::str::from_utf8(v.get(..digits)?).ok()?;
    s.parse().ok()
}

fn decimal(v: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut n = v;
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or(&[])
}

fn switch_fatal(xendev: *mut bindings::xenbus_device, depth: u32, err: Error, what: &str) {
    dev_error(xendev, err, fmt!("{}", what));
    if depth == 0 {
        switch_state(xendev, State::Closing.as_u32(), 1);
    }
}

/// `xenbus_switch_state`.
///
/// # Safety
///
/// `dev` is a live device.
#[export]
pub(crate) unsafe extern "C" fn xenbus_switch_state(
    dev: *mut bindings::xenbus_device,
    state: bindings::xenbus_state,
) -> c_int {
    if !dev.is_null() {
        switch_state(dev, state, 0);
    }
    0
}

/// `xenbus_frontend_closed`: Closed, and wake a shutdown waiting for it.
///
/// # Safety
///
/// `dev` is a live device.
#[export]
pub(crate) unsafe extern "C" fn xenbus_frontend_closed(dev: *mut bindings::xenbus_device) -> c_int {
    if dev.is_null() {
        return EINVAL.to_errno();
    }
    switch_state(dev, State::Closed.as_u32(), 0);
    // SAFETY: `dev` is live (contract).
    unsafe { bindings::complete(&mut (*dev).down) };
    0
}

/// Allocates `nr_pages` zeroed pages and grants the other end access to them.
///
/// # Safety
///
/// `dev` is live; `vaddr` writable; `grefs` has room for `nr_pages` references.
#[export]
pub(crate) unsafe extern "C" fn xenbus_setup_ring(
    dev: *mut bindings::xenbus_device,
    gfp: bindings::gfp_t,
    vaddr: *mut *mut c_void,
    nr_pages: c_uint,
    grefs: *mut bindings::grant_ref_t,
) -> c_int {
    if dev.is_null()
        || vaddr.is_null()
        || grefs.is_null()
        || nr_pages == 0
        || nr_pages > MAX_RING_GRANTS
    {
        return EINVAL.to_errno();
    }
    let size = nr_pages as usize * XEN_PAGE_SIZE;
    // SAFETY: Page allocation; zeroed so that no stale data is shared with the backend.
    let addr = unsafe { bindings::xen_alloc_pages_exact(size, gfp | bindings::__GFP_ZERO) };
    // SAFETY: `grefs` has `nr_pages` entries (contract).
    let grefs = unsafe { core::slice::from_raw_parts_mut(grefs, nr_pages as usize) };
    let fail = |err: c_int, addr: *mut c_void, grefs: &mut [bindings::grant_ref_t]| {
        if !addr.is_null() {
            // SAFETY: `addr` came from `alloc_pages_exact(size)` above.
            unsafe { bindings::free_pages_exact(addr, size) };
        }
        grefs.fill(INVALID_GRANT_REF);
        // SAFETY: `vaddr` is writable (contract).
        unsafe { *vaddr = ptr::null_mut() };
        err
    };
    if addr.is_null() {
        return fail(ENOMEM.to_errno(), addr, grefs);
    }
    let mut head: bindings::grant_ref_t = 0;
    // SAFETY: `head` is a valid out-parameter.
    let ret = unsafe { bindings::gnttab_alloc_grant_references(nr_pages as u16, &mut head) };
    if ret != 0 {
        dev_fatal(
            dev,
            Error::from_errno(ret),
            fmt!("granting access to {} ring pages", nr_pages),
        );
        return fail(ret, addr, grefs);
    }
    // SAFETY: `dev` is live.
    let otherend = unsafe { (*dev).otherend_id } as bindings::domid_t;
    for (i, gref) in grefs.iter_mut().enumerate() {
        // SAFETY: Inside the allocation (`i < nr_pages`).
        let page = unsafe { addr.byte_add(i * XEN_PAGE_SIZE) };
        // SAFETY: `page` is a direct-map address of our allocation; `head` holds `nr_pages`
        // references, one claimed per page.
        unsafe {
            let gfn = bindings::xen_virt_to_gfn(page);
            let r = bindings::gnttab_claim_grant_reference(&mut head);
            *gref = r as bindings::grant_ref_t;
            bindings::gnttab_grant_foreign_access_ref(*gref, otherend, gfn, 0);
        }
    }
    // SAFETY: `vaddr` is writable.
    unsafe { *vaddr = addr };
    0
}

/// Ends the grants and frees the pages of [`xenbus_setup_ring`].
///
/// # Safety
///
/// Arguments as returned by `xenbus_setup_ring`.
#[export]
pub(crate) unsafe extern "C" fn xenbus_teardown_ring(
    vaddr: *mut *mut c_void,
    nr_pages: c_uint,
    grefs: *mut bindings::grant_ref_t,
) {
    if !grefs.is_null() {
        // SAFETY: `grefs` has `nr_pages` entries (contract).
        for gref in unsafe { core::slice::from_raw_parts_mut(grefs, nr_pages as usize) } {
            if *gref != INVALID_GRANT_REF {
                // SAFETY: `gref` grants one of our pages; ending it is what teardown is for.
                unsafe { bindings::gnttab_end_foreign_access(*gref, ptr::null_mut()) };
                *gref = INVALID_GRANT_REF;
            }
        }
    }
    if !vaddr.is_null() {
        // SAFETY: `*vaddr` is NULL or the pages from `xenbus_setup_ring`.
        unsafe {
            if !(*vaddr).is_null() {
                bindings::free_pages_exact(*vaddr, nr_pages as usize * XEN_PAGE_SIZE);
            }
            *vaddr = ptr::null_mut();
        }
    }
}

/// Allocates an unbound event channel for the other end.
///
/// # Safety
///
/// `dev` is live; `port` writable.
#[export]
pub(crate) unsafe extern "C" fn xenbus_alloc_evtchn(
    dev: *mut bindings::xenbus_device,
    port: *mut bindings::evtchn_port_t,
) -> c_int {
    if dev.is_null() || port.is_null() {
        return EINVAL.to_errno();
    }
    let mut op = bindings::evtchn_alloc_unbound {
        dom: DOMID_SELF,
        // SAFETY: `dev` is live.
        remote_dom: unsafe { (*dev).otherend_id } as bindings::domid_t,
        port: 0,
    };
    // SAFETY: `op` is the argument structure of EVTCHNOP_alloc_unbound.
    let err = unsafe {
        bindings::xen_event_channel_op(
            bindings::EVTCHNOP_alloc_unbound as c_int,
            (&raw mut op).cast(),
        )
    };
    if err != 0 {
        dev_fatal(
            dev,
            Error::from_errno(err),
            fmt!("allocating event channel"),
        );
    } else {
        // SAFETY: `port` is writable.
        unsafe { *port = op.port };
    }
    err
}

/// Closes an event channel from [`xenbus_alloc_evtchn`].
///
/// # Safety
///
/// `dev` is live.
#[export]
pub(crate) unsafe extern "C" fn xenbus_free_evtchn(
    dev: *mut bindings::xenbus_device,
    port: bindings::evtchn_port_t,
) -> c_int {
    let mut op = bindings::evtchn_close { port };
    // SAFETY: `op` is the argument structure of EVTCHNOP_close.
    let err = unsafe {
        bindings::xen_event_channel_op(bindings::EVTCHNOP_close as c_int, (&raw mut op).cast())
    };
    if err != 0 && !dev.is_null() {
        dev_error(
            dev,
            Error::from_errno(err),
            fmt!("freeing event channel {}", port),
        );
    }
    err
}
