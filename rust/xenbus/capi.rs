// SPDX-License-Identifier: GPL-2.0

//! The C ABI of `include/xen/xenbus.h` that the rest of the kernel calls (`manage.c`,
//! `sys-hypervisor.c`, `privcmd.c`, xenfs, frontends, ...), implemented on the Rust core.
//!
//! `#[export]` checks every signature against the C declaration at build time. Semantics follow
//! the C core: results are `kmalloc`ed and freed by the caller with `kfree`, errors come back as
//! `ERR_PTR(-errno)` or `-errno`, waits are uninterruptible and have no timeout. The variadic
//! functions (`xenbus_printf`, `xenbus_scanf`, `xenbus_gather`) are in the C glue, which formats
//! and then calls these.

use crate::{bytes, connection, request::WaitMode::Uninterruptible, xs::Store};
use kernel::{
    bindings,
    prelude::*,
    xen::xenstore::proto::wire::{self, MsgType, Part},
};

fn store() -> Result<&'static Store> {
    connection::get().map(|c| &*c.store).ok_or(ENODEV)
}

/// Borrows a C string argument; `NULL` is `EINVAL`.
///
/// # Safety
///
/// `s` is `NULL` or a NUL-terminated string valid for `'a`.
unsafe fn c_str<'a>(s: *const c_char) -> Result<&'a [u8]> {
    if s.is_null() {
        return Err(EINVAL);
    }
    // SAFETY: Per the function's contract.
    Ok(unsafe { CStr::from_char_ptr(s) }.to_bytes())
}

/// [`JoinedPath`] as one string, for the operations that need the path itself.
///
/// # Safety
///
/// Both are `NULL` or NUL-terminated strings.
unsafe fn join(dir: *const c_char, node: *const c_char) -> Result<KVec<u8>> {
    // SAFETY: Per the function's contract.
    unsafe { JoinedPath::from_c(dir, node) }?.to_vec()
}

/// The C core's `join()`: `dir` alone if `node` is empty, `dir/node` otherwise. Read, write, rm
/// and mkdir send it without building the string first: the parts go straight into the request
/// payload (one allocation and copy fewer per operation).
struct JoinedPath<'a> {
    dir: &'a [u8],
    node: &'a [u8],
}

impl<'a> JoinedPath<'a> {
    /// # Safety
    ///
    /// Both are `NULL` or NUL-terminated strings valid for `'a`.
    unsafe fn from_c(dir: *const c_char, node: *const c_char) -> Result<Self> {
        // SAFETY: Per the function's contract.
        let (dir, node) = unsafe { (c_str(dir)?, c_str(node)?) };
        Ok(Self { dir, node })
    }

    fn to_vec(&self) -> Result<KVec<u8>> {
        let mut path = bytes::copy_with_room(self.dir, self.node.len() + 1)?;
        if !self.node.is_empty() {
            path.push(b'/', GFP_KERNEL)?;
            bytes::append(&mut path, self.node)?;
        }
        Ok(path)
    }

    /// Request `ty` whose payload is this path (NUL-terminated), then `value` if given.
    fn request(&self, ty: MsgType, value: Option<&'a [u8]>) -> Result<wire::Request<'a>> {
        let mut parts = [Part::Raw(&[]); wire::MAX_PARTS];
        let mut n = if self.node.is_empty() {
            parts[0] = Part::Str(self.dir);
            1
        } else {
            // C strings hold no NUL, so only the last piece needs the check `Str` makes.
            parts[0] = Part::Raw(self.dir);
            parts[1] = Part::Raw(b"/");
            parts[2] = Part::Str(self.node);
            3
        };
        if let Some(value) = value {
            parts[n] = Part::Raw(value);
            n += 1;
        }
        wire::Request::new(ty, parts.get(..n).unwrap_or(&[])).map_err(|_| EINVAL)
    }
}

/// `bytes` NUL-terminated in place and handed to C, which `kfree`s it. Replies from the ring
/// come with room for the NUL, so this neither copies nor reallocates them.
fn into_c_string(mut bytes: KVec<u8>) -> Result<*mut c_char> {
    // After a successful push the vector owns a kmalloc allocation, even if it was empty.
    bytes.push(0, GFP_KERNEL)?;
    let (ptr, _, _) = bytes.into_raw_parts();
    Ok(ptr.cast())
}

/// What the reading C calls return: `value` as a NUL-terminated string C `kfree`s, with its
/// length (without the NUL) in `len` unless that is `NULL`; or the error as an `ERR_PTR`.
///
/// # Safety
///
/// `len` is `NULL` or writable.
unsafe fn value_to_c(value: Result<KVec<u8>>, len: *mut c_uint) -> *mut c_void {
    let n = value.as_ref().map_or(0, |v| v.len());
    match value.and_then(into_c_string) {
        Ok(out) => {
            if !len.is_null() {
                // SAFETY: `len` is writable (contract); `n <= XENSTORE_PAYLOAD_MAX` fits.
                unsafe { *len = n as c_uint };
            }
            out.cast()
        }
        Err(e) => e.to_ptr(),
    }
}

/// A `kmalloc`ed, NUL-terminated string made of `parts`, for C to own (and `kfree`).
pub(crate) fn kmalloc_c_string_parts(parts: &[&[u8]]) -> Result<*const c_char> {
    let len = parts.iter().map(|p| p.len()).sum::<usize>();
    let mut v = KVec::with_capacity(len + 1, GFP_KERNEL)?;
    for p in parts {
        bytes::append(&mut v, p)?;
    }
    into_c_string(v).map(|p| p.cast_const())
}

/// A `kmalloc`ed, NUL-terminated copy of `bytes`, for C to own (and `kfree`).
pub(crate) fn kmalloc_c_string(bytes: &[u8]) -> Result<*const c_char> {
    kmalloc_c_string_parts(&[bytes])
}

/// The children of `path` (NUL-terminated) as `a\0b\0...`.
pub(crate) fn directory_of(path: &[u8]) -> Result<KVec<u8>> {
    let path = path.strip_suffix(&[0]).unwrap_or(path);
    store()?.directory(0, path, Uninterruptible)
}

fn errno(r: Result) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Reads `dir/node`; returns a NUL-terminated copy and its length (without the NUL) in `len`.
///
/// # Safety
///
/// `dir` and `node` are NUL-terminated strings; `len` is `NULL` or writable.
#[export]
pub(crate) unsafe extern "C" fn xenbus_read(
    t: bindings::xenbus_transaction,
    dir: *const c_char,
    node: *const c_char,
    len: *mut c_uint,
) -> *mut c_void {
    let result = (|| -> Result<KVec<u8>> {
        // SAFETY: Per the function's contract.
        let path = unsafe { JoinedPath::from_c(dir, node) }?;
        let value = store()?.call(&path.request(MsgType::Read, None)?, t.id, Uninterruptible)?;
        Ok(value)
    })();
    // SAFETY: `len` is `NULL` or writable (contract).
    unsafe { value_to_c(result, len) }
}

/// Writes `string` (without its NUL) to `dir/node`, creating missing parents.
///
/// # Safety
///
/// All three are NUL-terminated strings.
#[export]
pub(crate) unsafe extern "C" fn xenbus_write(
    t: bindings::xenbus_transaction,
    dir: *const c_char,
    node: *const c_char,
    string: *const c_char,
) -> c_int {
    errno((|| {
        // SAFETY: Per the function's contract.
        let path = unsafe { JoinedPath::from_c(dir, node) }?;
        // SAFETY: Per the function's contract.
        let value = unsafe { c_str(string) }?;
        let req = path.request(MsgType::Write, Some(value))?;
        store()?.call(&req, t.id, Uninterruptible).map(drop)
    })())
}

/// Lists the children of `dir/node`: an array of `*num` string pointers followed by the
/// strings, in one allocation for the caller to `kfree`.
///
/// # Safety
///
/// `dir` and `node` are NUL-terminated strings; `num` is writable.
#[export]
pub(crate) unsafe extern "C" fn xenbus_directory(
    t: bindings::xenbus_transaction,
    dir: *const c_char,
    node: *const c_char,
    num: *mut c_uint,
) -> *mut *mut c_char {
    let result = (|| -> Result<(*mut *mut c_char, usize)> {
        // SAFETY: Per the function's contract.
        let path = unsafe { join(dir, node) }?;
        let names = store()?.directory(t.id, &path, Uninterruptible)?;
        pack_strings(&names)
    })();
    match result {
        Ok((array, n)) => {
            if !num.is_null() {
                // SAFETY: `num` is writable (contract).
                unsafe { *num = n as c_uint };
            }
            array
        }
        Err(e) => e.to_ptr(),
    }
}

/// Builds the `char **` layout of `xenbus_directory` from `a\0b\0...`.
fn pack_strings(names: &[u8]) -> Result<(*mut *mut c_char, usize)> {
    let count = names.iter().filter(|&&b| b == 0).count();
    let word = core::mem::size_of::<usize>();
    let words = count + names.len().div_ceil(word);
    let mut buf = KVec::from_elem(0usize, words.max(1), GFP_KERNEL)?;
    let base = buf.as_mut_ptr();
    // SAFETY: `buf` holds `count` pointer words followed by at least `names.len()` bytes.
    let strings = unsafe { base.add(count) }.cast::<u8>();
    // SAFETY: The destination has room for `names.len()` bytes (see above) and does not overlap.
    unsafe { core::ptr::copy_nonoverlapping(names.as_ptr(), strings, names.len()) };
    let mut start = 0;
    let mut index = 0;
    for (i, &b) in names.iter().enumerate() {
        if b == 0 {
            if let Some(slot) = buf.get_mut(index) {
                // SAFETY: `start < names.len()`, inside the copied strings.
                *slot = unsafe { strings.add(start) } as usize;
            }
            index += 1;
            start = i + 1;
        }
    }
    let (ptr, _, _) = buf.into_raw_parts();
    Ok((ptr.cast(), count))
}

/// Whether `dir/node` exists (1) or not (0).
///
/// # Safety
///
/// `dir` and `node` are NUL-terminated strings.
#[export]
pub(crate) unsafe extern "C" fn xenbus_exists(
    t: bindings::xenbus_transaction,
    dir: *const c_char,
    node: *const c_char,
) -> c_int {
    // SAFETY: Per the function's contract.
    let path = unsafe { join(dir, node) };
    let exists = path
        .and_then(|p| store()?.directory(t.id, &p, Uninterruptible))
        .is_ok();
    c_int::from(exists)
}

/// Sends `ty` (`RM`, `MKDIR`: the path is the whole payload) and waits for its `OK`.
fn path_command(
    t: bindings::xenbus_transaction,
    path: Result<JoinedPath<'_>>,
    ty: MsgType,
) -> c_int {
    errno((|| {
        let path = path?;
        store()?
            .call(&path.request(ty, None)?, t.id, Uninterruptible)
            .map(drop)
    })())
}

/// Removes `dir/node` and everything below it.
///
/// # Safety
///
/// `dir` and `node` are NUL-terminated strings.
#[export]
pub(crate) unsafe extern "C" fn xenbus_rm(
    t: bindings::xenbus_transaction,
    dir: *const c_char,
    node: *const c_char,
) -> c_int {
    // SAFETY: Per the function's contract.
    let path = unsafe { JoinedPath::from_c(dir, node) };
    path_command(t, path, MsgType::Rm)
}

/// Starts a transaction and stores its id in `*t`.
///
/// # Safety
///
/// `t` is writable.
#[export]
pub(crate) unsafe extern "C" fn xenbus_transaction_start(
    t: *mut bindings::xenbus_transaction,
) -> c_int {
    match store().and_then(|s| s.transaction_start(Uninterruptible)) {
        Ok(id) => {
            if t.is_null() {
                return EINVAL.to_errno();
            }
            // SAFETY: `t` is writable (contract).
            unsafe { (*t).id = id };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Ends transaction `t`: commits unless `abort`; a conflict is `-EAGAIN`.
///
/// # Safety
///
/// None beyond the C API's: `t` came from `xenbus_transaction_start`.
#[export]
pub(crate) unsafe extern "C" fn xenbus_transaction_end(
    t: bindings::xenbus_transaction,
    abort: bool,
) -> c_int {
    errno(store().and_then(|s| s.transaction_end(t.id, !abort, Uninterruptible)))
}

/// Registers `watch`; its callback runs for every change under `watch->node`.
///
/// # Safety
///
/// `watch` is valid and stays valid and unmoved until `unregister_xenbus_watch(watch)` returns.
#[export]
pub(crate) unsafe extern "C" fn register_xenbus_watch(watch: *mut bindings::xenbus_watch) -> c_int {
    let Some(watch) = core::ptr::NonNull::new(watch) else {
        return EINVAL.to_errno();
    };
    let Some(c) = connection::get() else {
        return ENODEV.to_errno();
    };
    errno(c.watches.register_c(&*c.store, watch))
}

/// Unregisters `watch`. When it returns, no callback of `watch` runs or will run, unless it is
/// called from that callback itself.
///
/// # Safety
///
/// `watch` was registered with `register_xenbus_watch`.
#[export]
pub(crate) unsafe extern "C" fn unregister_xenbus_watch(watch: *mut bindings::xenbus_watch) {
    let (Some(watch), Some(c)) = (core::ptr::NonNull::new(watch), connection::get()) else {
        return;
    };
    c.watches.unregister_c(&*c.store, watch);
}

/// Creates `dir/node` (an empty node; existing nodes are left alone).
///
/// # Safety
///
/// `dir` and `node` are NUL-terminated strings.
#[export]
pub(crate) unsafe extern "C" fn xenbus_rs_mkdir(
    t: bindings::xenbus_transaction,
    dir: *const c_char,
    node: *const c_char,
) -> c_int {
    // SAFETY: Per the function's contract.
    let path = unsafe { JoinedPath::from_c(dir, node) };
    path_command(t, path, MsgType::Mkdir)
}

/// The permissions of `dir/node` as on the wire (`"n5\0r0\0"`), `kmalloc`ed; `*len` bytes.
///
/// # Safety
///
/// `dir` and `node` are NUL-terminated strings; `len` is `NULL` or writable.
#[export]
pub(crate) unsafe extern "C" fn xenbus_rs_get_perms(
    t: bindings::xenbus_transaction,
    dir: *const c_char,
    node: *const c_char,
    len: *mut c_uint,
) -> *mut c_void {
    let result = (|| -> Result<KVec<u8>> {
        // SAFETY: Per the function's contract.
        let path = unsafe { join(dir, node) }?;
        let perms = store()?.get_perms(t.id, &path, Uninterruptible)?;
        // Every entry must be a valid permission (letter + domid), NUL-terminated.
        let _ = kernel::xen::xenstore::proto::wire::perms(&perms).map_err(|_| EIO)?;
        Ok(perms)
    })();
    // SAFETY: `len` is `NULL` or writable (contract).
    unsafe { value_to_c(result, len) }
}

/// Sets the permissions of `dir/node`; `perms` holds `len` bytes of NUL-terminated entries.
///
/// # Safety
///
/// `dir` and `node` are NUL-terminated strings; `perms` points to `len` readable bytes.
#[export]
pub(crate) unsafe extern "C" fn xenbus_rs_set_perms(
    t: bindings::xenbus_transaction,
    dir: *const c_char,
    node: *const c_char,
    perms: *const c_char,
    len: c_uint,
) -> c_int {
    errno((|| {
        // SAFETY: Per the function's contract.
        let path = unsafe { join(dir, node) }?;
        if perms.is_null() || len == 0 {
            return Err(EINVAL);
        }
        // SAFETY: `perms` points to `len` readable bytes (contract).
        let raw = unsafe { core::slice::from_raw_parts(perms.cast::<u8>(), len as usize) };
        let mut list = KVec::new();
        for entry in kernel::xen::xenstore::proto::wire::perms(raw).map_err(|_| EINVAL)? {
            list.push(entry, GFP_KERNEL)?;
        }
        store()?.set_perms(t.id, &path, &list, Uninterruptible)
    })())
}

/// The home path of domain `domid` (`/local/domain/<domid>`), `kmalloc`ed.
#[export]
pub(crate) extern "C" fn xenbus_rs_get_domain_path(domid: c_uint) -> *mut c_char {
    let result = store()
        .and_then(|s| s.get_domain_path(domid, Uninterruptible))
        .and_then(|p| kmalloc_c_string(crate::watch::without_nul(&p)));
    match result {
        Ok(p) => p.cast_mut(),
        Err(e) => e.to_ptr(),
    }
}

/// Prepares for suspend: waits for requests and kernel transactions, then stops the ring.
#[export]
pub(crate) extern "C" fn xs_suspend() {
    if let Some(c) = connection::get() {
        c.suspend();
    }
}

/// Restarts after resume: new event channel, fresh ring state, watches registered again.
#[export]
pub(crate) extern "C" fn xs_resume() {
    if let Some(c) = connection::get() {
        c.resume();
    }
}

/// The suspend was cancelled: carry on.
#[export]
pub(crate) extern "C" fn xs_suspend_cancel() {
    if let Some(c) = connection::get() {
        c.suspend_cancel();
    }
}

/// Sets the HVM callback (`HVM_PARAM_CALLBACK_IRQ`); probes xenstore if it was waiting for it.
#[export]
pub(crate) extern "C" fn xen_set_callback_via(via: u64) -> c_int {
    // SAFETY: Sets one HVM parameter of this domain.
    let ret = unsafe {
        bindings::xen_hvm_set_parameter(kernel::xen::hvm_param::CALLBACK_IRQ as c_int, via)
    };
    if ret != 0 {
        return ret;
    }
    if let Some(c) = connection::get() {
        if !c.is_ready() && c.defer_for_callback() {
            c.probe();
        }
    }
    0
}

/// `postcore_initcall` from the glue.
#[export]
pub(crate) extern "C" fn xenbus_rs_init() -> c_int {
    match crate::connection::init() {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// `device_initcall` from the glue: mark xenstore ready unless an HVM guest must wait for its
/// callback vector (then `xen_set_callback_via` does it).
#[export]
pub(crate) extern "C" fn xenbus_rs_probe_initcall() -> c_int {
    let Some(c) = connection::get() else {
        // A store that comes later is probed by the late-init thread.
        return if crate::late_init::pending() {
            0
        } else {
            ENODEV.to_errno()
        };
    };
    if !c.defer_for_callback() {
        c.probe();
    }
    0
}
