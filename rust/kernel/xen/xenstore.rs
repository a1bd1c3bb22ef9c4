// SPDX-License-Identifier: GPL-2.0

//! Xenstore: the protocol, and a safe API to the store for kernel Rust code.
//!
//! The API sits on the C ABI of `include/xen/xenbus.h` (`xenbus_read()`, `xenbus_write()`,
//! `register_xenbus_watch()`, ...), so it works with either xenbus core. What it adds:
//!
//! - typed paths: [`PathStr`] (borrowed) and [`Path`] (owned) are always valid xenstore paths
//!   (see [`proto::path`]), so a malformed path is an error before anything is sent;
//! - owned results: values are [`KVec<u8>`], directory listings a [`Directory`] of names;
//! - [`Transaction`]: aborted on drop, [`Transaction::commit`] consumes it, and
//!   [`transaction`] retries a closure while the commit conflicts (`EAGAIN`);
//! - [`Watch`]: registered while it lives, unregistered on drop, with a [`WatchHandler`]
//!   (a trait, also implemented by closures) that runs in process context and may block.
//!
//! Relative paths are relative to the domain's home, `/local/domain/<domid>`.
//!
//! Operations the C API has no function for (`mkdir`, permissions, domain paths) are only
//! available with the Rust core (`CONFIG_XEN_XENBUS_CORE_RUST`).
//!
//! All functions may sleep: call them from process context only. Until xenstore is up
//! ([`is_ready`]) they fail (or, with the C core, wait for it).
//!
//! The examples run as KUnit tests at boot; on Xen they use the real xenstore daemon (under
//! `data/`, which the guest may write), elsewhere they return early.
//!
//! # Examples
//!
//! ```
//! use kernel::xen::xenstore::{self, PathStr};
//!
//! if !kernel::xen::is_xen_domain() {
//!     return Ok(());
//! }
//! assert!(xenstore::is_ready());
//! let name = xenstore::read(PathStr::new(c"name")?)?;
//! assert!(!name.is_empty());
//! let domid = xenstore::read_u32(PathStr::new(c"domid")?)?;
//! assert!(domid > 0);
//! # Ok::<(), Error>(())
//! ```

pub mod proto;

use crate::{
    bindings,
    error::{from_err_ptr, to_result},
    fmt,
    prelude::*,
    str::CString,
    sync::Arc,
    types::Opaque,
};
use core::{mem::ManuallyDrop, ops::Deref, ptr};
use proto::path::{PathError, PathKind};
use proto::state::XenbusState;

pub use proto::wire::{Perm, PermKind};

/// Whether xenstore is up: the store is connected and requests are answered.
pub fn is_ready() -> bool {
    if !super::is_xen_domain() {
        return false;
    }
    // SAFETY: `xenstored_ready` is an `int` that the core sets once xenstore is up; reading a
    // stale value only delays the answer.
    unsafe { ptr::read_volatile(&raw const bindings::xenstored_ready) > 0 }
}

fn path_error(e: PathError) -> Error {
    match e {
        PathError::TooLong | PathError::BufferTooSmall => ENAMETOOLONG,
        _ => EINVAL,
    }
}

/// A borrowed xenstore path, valid by construction.
///
/// It is NUL-terminated (it can be passed to C as is) and follows the rules of
/// [`proto::path::validate`]: ASCII letters, digits and `-/_@`, no empty component, no trailing
/// `/` (except for the root), `@` only as the first byte of a special watch path, at most 3072
/// bytes (absolute) or 2048 bytes (relative).
///
/// # Invariants
///
/// The inner string is accepted by [`proto::path::validate`].
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::{PathStr, proto::path::PathKind};
///
/// let dev = PathStr::new(c"device/vbd/51712")?;
/// assert_eq!(dev.kind(), PathKind::Relative);
/// let state = dev.join(b"state")?;
/// assert_eq!(state.as_bytes(), b"device/vbd/51712/state");
/// assert_eq!(PathStr::new(c"/")?.join(b"local")?.as_bytes(), b"/local");
///
/// assert_eq!(PathStr::new(c"").err(), Some(EINVAL));
/// assert_eq!(PathStr::new(c"data//x").err(), Some(EINVAL));
/// assert_eq!(PathStr::new(c"data/x/").err(), Some(EINVAL));
/// assert_eq!(PathStr::new(c"data/a b").err(), Some(EINVAL));
/// assert!(dev.join(b"../x").is_err());
/// # Ok::<(), Error>(())
/// ```
#[repr(transparent)]
pub struct PathStr(CStr);

impl PathStr {
    /// Checks `s` and borrows it as a path.
    ///
    /// Fails with `EINVAL` for a malformed path and `ENAMETOOLONG` for a too long one.
    pub fn new(s: &CStr) -> Result<&PathStr> {
        proto::path::validate(s.to_bytes()).map_err(path_error)?;
        // SAFETY: `PathStr` is a transparent wrapper around `CStr`, so the pointer cast keeps the
        // metadata and layout. INVARIANT: `s` was validated above.
        Ok(unsafe { &*(ptr::from_ref(s) as *const PathStr) })
    }

    /// The path as a C string.
    pub fn as_cstr(&self) -> &CStr {
        &self.0
    }

    /// The path's bytes, without the NUL terminator.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.to_bytes()
    }

    /// The path as a pointer to a NUL-terminated string, for C.
    pub fn as_char_ptr(&self) -> *const c_char {
        self.0.as_char_ptr()
    }

    /// Whether the path is absolute, relative or a special watch path (`@...`).
    pub fn kind(&self) -> PathKind {
        match self.as_bytes().first() {
            Some(b'/') => PathKind::Absolute,
            Some(b'@') => PathKind::Special,
            _ => PathKind::Relative,
        }
    }

    /// `self/node` (or `self` if `node` is empty), checked as a whole.
    ///
    /// Joining to the root `/` gives `/node`. `node` may have several components (`a/b`).
    pub fn join(&self, node: &[u8]) -> Result<Path> {
        let dir = self.as_bytes();
        let dir: &[u8] = if dir == b"/" && !node.is_empty() {
            b""
        } else {
            dir
        };
        let mut buf = KVec::with_capacity(dir.len() + node.len() + 2, GFP_KERNEL)?;
        buf.extend_from_slice(dir, GFP_KERNEL)?;
        if !node.is_empty() {
            buf.push(b'/', GFP_KERNEL)?;
            buf.extend_from_slice(node, GFP_KERNEL)?;
        }
        Path::from_vec(buf)
    }

    /// An owned copy of the path.
    pub fn to_path(&self) -> Result<Path> {
        let mut buf = KVec::new();
        buf.extend_from_slice(self.0.to_bytes_with_nul(), GFP_KERNEL)?;
        // INVARIANT: A copy of a valid, NUL-terminated path.
        Ok(Path { buf })
    }
}

impl fmt::Display for PathStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Valid paths are printable ASCII.
        for &b in self.as_bytes() {
            fmt::Write::write_char(f, char::from(b))?;
        }
        Ok(())
    }
}

impl fmt::Debug for PathStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Write::write_char(f, '"')?;
        fmt::Display::fmt(self, f)?;
        fmt::Write::write_char(f, '"')
    }
}

impl PartialEq for PathStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PathStr {}

/// An owned xenstore path, valid by construction (see [`PathStr`]).
///
/// # Invariants
///
/// `buf` is a NUL-terminated string without interior NUL, accepted by
/// [`proto::path::validate`] (without its NUL).
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::Path;
///
/// let p = Path::new(b"device/vif/0")?;
/// assert_eq!(p.as_cstr(), c"device/vif/0");
/// let q = Path::try_from_fmt(fmt!("/local/domain/{}/name", 7))?;
/// assert_eq!(q.as_bytes(), b"/local/domain/7/name");
/// assert!(Path::new(b"a\0b").is_err());
/// # Ok::<(), Error>(())
/// ```
pub struct Path {
    buf: KVec<u8>,
}

impl Path {
    /// Checks `bytes` (without NUL terminator) and copies it into a new path.
    pub fn new(bytes: &[u8]) -> Result<Path> {
        let mut buf = KVec::with_capacity(bytes.len() + 1, GFP_KERNEL)?;
        buf.extend_from_slice(bytes, GFP_KERNEL)?;
        Self::from_vec(buf)
    }

    /// Formats a path, e.g. `Path::try_from_fmt(fmt!("device/vbd/{id}"))`.
    pub fn try_from_fmt(args: fmt::Arguments<'_>) -> Result<Path> {
        let s = CString::try_from_fmt(args)?;
        Self::new(s.to_bytes())
    }

    /// Takes `buf` (a path without NUL terminator) after checking it.
    fn from_vec(mut buf: KVec<u8>) -> Result<Path> {
        // `validate` rejects NUL bytes, so after the push there is exactly one, at the end.
        proto::path::validate(&buf).map_err(path_error)?;
        buf.push(0, GFP_KERNEL)?;
        // INVARIANT: Validated and NUL-terminated.
        Ok(Path { buf })
    }
}

impl Deref for Path {
    type Target = PathStr;

    fn deref(&self) -> &PathStr {
        // SAFETY: By the type invariant `buf` is NUL-terminated without interior NUL.
        let s = unsafe { CStr::from_bytes_with_nul_unchecked(&self.buf) };
        // SAFETY: `PathStr` is a transparent wrapper around `CStr`. INVARIANT: `buf` holds a
        // valid path (type invariant).
        unsafe { &*(ptr::from_ref(s) as *const PathStr) }
    }
}

impl AsRef<PathStr> for Path {
    fn as_ref(&self) -> &PathStr {
        self
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The names of the children of a node, as returned by [`directory`].
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::{self, PathStr};
///
/// if !kernel::xen::is_xen_domain() {
///     return Ok(());
/// }
/// let dir = PathStr::new(c"data/rust-doctest/dir")?;
/// xenstore::write(&dir.join(b"a")?, b"1")?;
/// xenstore::write(&dir.join(b"b")?, b"2")?;
/// let names = xenstore::directory(dir)?;
/// assert_eq!(names.len(), 2);
/// assert!(names.contains(b"a") && names.contains(b"b"));
/// for name in &names {
///     assert_eq!(xenstore::read(&dir.join(name.to_bytes())?)?.len(), 1);
/// }
/// xenstore::rm(dir)?;
/// assert!(!xenstore::exists(dir));
/// # Ok::<(), Error>(())
/// ```
pub struct Directory {
    /// `name\0name\0...`.
    names: KVec<u8>,
    count: usize,
}

impl Directory {
    /// The number of children.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the node has no children.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The children's names.
    pub fn iter(&self) -> DirectoryIter<'_> {
        DirectoryIter { rest: &self.names }
    }

    /// Whether `name` is one of the children.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.iter().any(|n| n.to_bytes() == name)
    }
}

impl<'a> IntoIterator for &'a Directory {
    type Item = &'a CStr;
    type IntoIter = DirectoryIter<'a>;

    fn into_iter(self) -> DirectoryIter<'a> {
        self.iter()
    }
}

/// Iterator over the names of a [`Directory`].
pub struct DirectoryIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for DirectoryIter<'a> {
    type Item = &'a CStr;

    fn next(&mut self) -> Option<&'a CStr> {
        let end = self.rest.iter().position(|&b| b == 0)?;
        let (name, rest) = self.rest.split_at_checked(end + 1)?;
        self.rest = rest;
        CStr::from_bytes_with_nul(name).ok()
    }
}

/// A `kmalloc`ed result of the C API, freed on drop.
struct KmallocGuard(*mut c_void);

impl Drop for KmallocGuard {
    fn drop(&mut self) {
        // SAFETY: The pointer came from the C API, which allocates its results with `kmalloc`
        // and hands them to the caller.
        unsafe { bindings::kfree(self.0) };
    }
}

/// The raw operations, shared by the plain functions and [`Transaction`].
mod raw {
    use super::*;

    pub(super) const NIL: bindings::xenbus_transaction = bindings::xenbus_transaction { id: 0 };

    /// A node name that makes `xenbus_*(t, path, "")` address `path` itself.
    fn here() -> *const c_char {
        c"".as_char_ptr()
    }

    /// Copies out (and frees) a `len`-byte `kmalloc`ed reply of the C API, given as its
    /// returned pointer (an error pointer is that error).
    ///
    /// # Safety
    ///
    /// `p` is what a C API call that hands back `len` bytes returned: an error pointer, null, or
    /// a `kmalloc`ed buffer of at least `len` bytes owned by the caller.
    unsafe fn take_reply(p: *mut c_void, len: c_uint) -> Result<KVec<u8>> {
        let p = from_err_ptr(p)?;
        if p.is_null() {
            return Err(EIO);
        }
        let _guard = KmallocGuard(p);
        // SAFETY: Per the function's contract, `p` holds `len` bytes, alive until `_guard`
        // frees them.
        let reply = unsafe { core::slice::from_raw_parts(p.cast::<u8>(), len as usize) };
        let mut v = KVec::with_capacity(reply.len(), GFP_KERNEL)?;
        v.extend_from_slice(reply, GFP_KERNEL)?;
        Ok(v)
    }

    pub(super) fn read(t: bindings::xenbus_transaction, path: &PathStr) -> Result<KVec<u8>> {
        let mut len: c_uint = 0;
        // SAFETY: `path` and `here()` are NUL-terminated strings; `len` is writable.
        let p = unsafe { bindings::xenbus_read(t, path.as_char_ptr(), here(), &mut len) };
        // SAFETY: `xenbus_read` returns an error pointer or `len` `kmalloc`ed bytes (plus a NUL).
        unsafe { take_reply(p, len) }
    }

    pub(super) fn write_cstr(
        t: bindings::xenbus_transaction,
        path: &PathStr,
        value: &CStr,
    ) -> Result {
        // SAFETY: All three are NUL-terminated strings.
        to_result(unsafe {
            bindings::xenbus_write(t, path.as_char_ptr(), here(), value.as_char_ptr())
        })
    }

    pub(super) fn write(t: bindings::xenbus_transaction, path: &PathStr, value: &[u8]) -> Result {
        // The C API takes the value as a C string: it cannot carry NUL bytes.
        if value.contains(&0) {
            return Err(EINVAL);
        }
        let mut v = KVec::with_capacity(value.len() + 1, GFP_KERNEL)?;
        v.extend_from_slice(value, GFP_KERNEL)?;
        v.push(0, GFP_KERNEL)?;
        // SAFETY: `v` is NUL-terminated without interior NUL (checked above).
        write_cstr(t, path, unsafe { CStr::from_bytes_with_nul_unchecked(&v) })
    }

    pub(super) fn exists(t: bindings::xenbus_transaction, path: &PathStr) -> bool {
        // SAFETY: Both are NUL-terminated strings.
        unsafe { bindings::xenbus_exists(t, path.as_char_ptr(), here()) > 0 }
    }

    pub(super) fn rm(t: bindings::xenbus_transaction, path: &PathStr) -> Result {
        // SAFETY: Both are NUL-terminated strings.
        to_result(unsafe { bindings::xenbus_rm(t, path.as_char_ptr(), here()) })
    }

    pub(super) fn directory(t: bindings::xenbus_transaction, path: &PathStr) -> Result<Directory> {
        let mut num: c_uint = 0;
        // SAFETY: Both are NUL-terminated strings; `num` is writable.
        let arr = unsafe { bindings::xenbus_directory(t, path.as_char_ptr(), here(), &mut num) };
        let arr = from_err_ptr(arr)?;
        if arr.is_null() {
            return Err(EIO);
        }
        let _guard = KmallocGuard(arr.cast());
        let mut names = KVec::new();
        let mut count = 0;
        for i in 0..num as usize {
            // SAFETY: `xenbus_directory` returns an array of `num` pointers to NUL-terminated
            // strings, all inside the allocation `_guard` frees after the loop.
            let name = unsafe { CStr::from_char_ptr(*arr.add(i)) };
            names.extend_from_slice(name.to_bytes_with_nul(), GFP_KERNEL)?;
            count += 1;
        }
        Ok(Directory { names, count })
    }

    pub(super) fn read_u32(t: bindings::xenbus_transaction, path: &PathStr) -> Result<u32> {
        parse_u32(&read(t, path)?)
    }

    pub(super) fn read_state(
        t: bindings::xenbus_transaction,
        path: &PathStr,
    ) -> Result<XenbusState> {
        XenbusState::parse(&read(t, path)?).map_err(|e| match e {
            proto::state::StateParseError::NotANumber => EINVAL,
            proto::state::StateParseError::OutOfRange => ERANGE,
        })
    }

    pub(super) fn write_fmt(
        t: bindings::xenbus_transaction,
        path: &PathStr,
        args: fmt::Arguments<'_>,
    ) -> Result {
        let value = CString::try_from_fmt(args)?;
        write_cstr(t, path, &value)
    }

    #[cfg(CONFIG_XEN_XENBUS_CORE_RUST)]
    pub(super) fn mkdir(t: bindings::xenbus_transaction, path: &PathStr) -> Result {
        // SAFETY: Both are NUL-terminated strings.
        to_result(unsafe { bindings::xenbus_rs_mkdir(t, path.as_char_ptr(), here()) })
    }

    #[cfg(CONFIG_XEN_XENBUS_CORE_RUST)]
    pub(super) fn get_perms(t: bindings::xenbus_transaction, path: &PathStr) -> Result<KVec<Perm>> {
        let mut len: c_uint = 0;
        // SAFETY: Both are NUL-terminated strings; `len` is writable.
        let p = unsafe { bindings::xenbus_rs_get_perms(t, path.as_char_ptr(), here(), &mut len) };
        // SAFETY: The core returns an error pointer or `len` `kmalloc`ed bytes.
        let wire = unsafe { take_reply(p, len) }?;
        let mut perms = KVec::new();
        for perm in proto::wire::perms(&wire).map_err(|_| EIO)? {
            perms.push(perm, GFP_KERNEL)?;
        }
        Ok(perms)
    }

    #[cfg(CONFIG_XEN_XENBUS_CORE_RUST)]
    pub(super) fn set_perms(
        t: bindings::xenbus_transaction,
        path: &PathStr,
        perms: &[Perm],
    ) -> Result {
        if perms.is_empty() {
            return Err(EINVAL);
        }
        let mut wire = KVec::new();
        for perm in perms {
            let mut buf = [0u8; proto::wire::PERM_MAX];
            wire.extend_from_slice(perm.format(&mut buf), GFP_KERNEL)?;
            wire.push(0, GFP_KERNEL)?;
        }
        let len = c_uint::try_from(wire.len()).map_err(|_| E2BIG)?;
        // SAFETY: `path` and `here()` are NUL-terminated strings; `wire` holds `len` bytes.
        to_result(unsafe {
            bindings::xenbus_rs_set_perms(t, path.as_char_ptr(), here(), wire.as_ptr().cast(), len)
        })
    }
}

/// Parses an unsigned decimal number: ASCII digits only (leading zeros allowed).
fn parse_u32(s: &[u8]) -> Result<u32> {
    if s.is_empty() {
        return Err(EINVAL);
    }
    let mut acc: u32 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(EINVAL);
        }
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_add(u32::from(b - b'0')))
            .ok_or(ERANGE)?;
    }
    Ok(acc)
}

/// Reads the value of `path`.
///
/// Values are bytes; they are usually (but need not be) text without NUL.
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::{self, PathStr};
///
/// if !kernel::xen::is_xen_domain() {
///     return Ok(());
/// }
/// let p = PathStr::new(c"data/rust-doctest/rw")?;
/// xenstore::write(p, b"hello")?;
/// assert_eq!(&xenstore::read(p)?[..], b"hello");
/// assert!(xenstore::exists(p));
/// xenstore::rm(p)?;
/// assert!(!xenstore::exists(p));
/// assert_eq!(xenstore::read(p).err(), Some(ENOENT));
/// # Ok::<(), Error>(())
/// ```
pub fn read(path: &PathStr) -> Result<KVec<u8>> {
    raw::read(raw::NIL, path)
}

/// Reads `path` as an unsigned decimal number (`EINVAL` if it is not one, `ERANGE` if it does
/// not fit).
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::{self, PathStr};
///
/// if !kernel::xen::is_xen_domain() {
///     return Ok(());
/// }
/// let p = PathStr::new(c"data/rust-doctest/num")?;
/// xenstore::write_fmt(p, fmt!("{}", 4096))?;
/// assert_eq!(xenstore::read_u32(p)?, 4096);
/// xenstore::write(p, b"12ab")?;
/// assert_eq!(xenstore::read_u32(p).err(), Some(EINVAL));
/// assert_eq!(xenstore::read_u32_or(p, 7), 7);
/// xenstore::rm(p)?;
/// assert_eq!(xenstore::read_u32_or(p, 9), 9);
/// # Ok::<(), Error>(())
/// ```
pub fn read_u32(path: &PathStr) -> Result<u32> {
    raw::read_u32(raw::NIL, path)
}

/// Reads `path` as an unsigned decimal number, or `default` if that fails for any reason (like
/// `xenbus_read_unsigned()`).
pub fn read_u32_or(path: &PathStr, default: u32) -> u32 {
    read_u32(path).unwrap_or(default)
}

/// Reads `path` as a xenbus device state (`EINVAL` if it is not a number, `ERANGE` if it is not
/// a known state).
pub fn read_state(path: &PathStr) -> Result<XenbusState> {
    raw::read_state(raw::NIL, path)
}

/// Writes `value` to `path`, creating the node and missing parents.
///
/// The C API carries values as C strings: a `value` with a NUL byte is `EINVAL`.
pub fn write(path: &PathStr, value: &[u8]) -> Result {
    raw::write(raw::NIL, path, value)
}

/// Writes a formatted value, e.g. `write_fmt(path, fmt!("{ring_ref}"))`.
pub fn write_fmt(path: &PathStr, args: fmt::Arguments<'_>) -> Result {
    raw::write_fmt(raw::NIL, path, args)
}

/// Whether `path` exists (any error, including no permission to read it, counts as no).
pub fn exists(path: &PathStr) -> bool {
    raw::exists(raw::NIL, path)
}

/// Removes `path` and everything below it.
pub fn rm(path: &PathStr) -> Result {
    raw::rm(raw::NIL, path)
}

/// Lists the children of `path`.
pub fn directory(path: &PathStr) -> Result<Directory> {
    raw::directory(raw::NIL, path)
}

/// A xenstore transaction: a consistent view of the store whose writes apply all at once, or
/// not at all.
///
/// Dropping it aborts it. [`Transaction::commit`] consumes it; it fails with `EAGAIN` when the
/// transaction conflicted with another change to the store, and then nothing was written:
/// start again (see [`transaction`]). Keep transactions short: they hold up suspend.
///
/// # Examples
///
/// An aborted transaction leaves the store unchanged:
///
/// ```
/// use kernel::xen::xenstore::{self, PathStr, Transaction};
///
/// if !kernel::xen::is_xen_domain() {
///     return Ok(());
/// }
/// let p = PathStr::new(c"data/rust-doctest/tx")?;
/// xenstore::write(p, b"before")?;
/// {
///     let tx = Transaction::start()?;
///     tx.write(p, b"inside")?;
///     assert_eq!(&tx.read(p)?[..], b"inside");
///     // Dropped here: aborted.
/// }
/// assert_eq!(&xenstore::read(p)?[..], b"before");
///
/// let tx = Transaction::start()?;
/// tx.write(p, b"committed")?;
/// tx.commit()?;
/// assert_eq!(&xenstore::read(p)?[..], b"committed");
/// xenstore::rm(p)?;
/// # Ok::<(), Error>(())
/// ```
pub struct Transaction {
    t: bindings::xenbus_transaction,
}

impl Transaction {
    /// Starts a transaction.
    pub fn start() -> Result<Transaction> {
        let mut t = raw::NIL;
        // SAFETY: `t` is writable.
        to_result(unsafe { bindings::xenbus_transaction_start(&mut t) })?;
        Ok(Transaction { t })
    }

    /// The transaction id xenstored gave it.
    pub fn id(&self) -> u32 {
        self.t.id
    }

    fn end(self, abort: bool) -> Result {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this.t` was started and not ended (ending consumes the `Transaction`).
        to_result(unsafe { bindings::xenbus_transaction_end(this.t, abort) })
    }

    /// Commits the transaction; `EAGAIN` if it conflicted (nothing was written).
    pub fn commit(self) -> Result {
        self.end(false)
    }

    /// Aborts the transaction (like dropping it, but reports errors).
    pub fn abort(self) -> Result {
        self.end(true)
    }

    /// Reads `path` in the transaction, see [`read`].
    pub fn read(&self, path: &PathStr) -> Result<KVec<u8>> {
        raw::read(self.t, path)
    }

    /// Reads an unsigned decimal number in the transaction, see [`read_u32`].
    pub fn read_u32(&self, path: &PathStr) -> Result<u32> {
        raw::read_u32(self.t, path)
    }

    /// Reads a device state in the transaction, see [`read_state`].
    pub fn read_state(&self, path: &PathStr) -> Result<XenbusState> {
        raw::read_state(self.t, path)
    }

    /// Writes `path` in the transaction, see [`write`].
    pub fn write(&self, path: &PathStr, value: &[u8]) -> Result {
        raw::write(self.t, path, value)
    }

    /// Writes a formatted value in the transaction, see [`write_fmt`].
    pub fn write_fmt(&self, path: &PathStr, args: fmt::Arguments<'_>) -> Result {
        raw::write_fmt(self.t, path, args)
    }

    /// Whether `path` exists in the transaction, see [`exists`].
    pub fn exists(&self, path: &PathStr) -> bool {
        raw::exists(self.t, path)
    }

    /// Removes `path` in the transaction, see [`rm`].
    pub fn rm(&self, path: &PathStr) -> Result {
        raw::rm(self.t, path)
    }

    /// Lists the children of `path` in the transaction, see [`directory`].
    pub fn directory(&self, path: &PathStr) -> Result<Directory> {
        raw::directory(self.t, path)
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // SAFETY: `self.t` was started and not ended (ending consumes the `Transaction` without
        // running this). An abort cannot usefully fail.
        let _ = unsafe { bindings::xenbus_transaction_end(self.t, true) };
    }
}

/// Runs `f` in a transaction and commits it, starting again (at most `attempts` times in all)
/// while the commit, or `f` itself, fails with `EAGAIN`.
///
/// Any other error of `f` aborts the transaction and is returned. After `attempts` conflicts
/// the result is `EAGAIN`; `attempts == 0` is `EINVAL`.
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::{self, PathStr};
///
/// if !kernel::xen::is_xen_domain() {
///     return Ok(());
/// }
/// let p = PathStr::new(c"data/rust-doctest/counter")?;
/// xenstore::write(p, b"41")?;
/// let new = xenstore::transaction(5, |tx| {
///     let v = tx.read_u32(p)? + 1;
///     tx.write_fmt(p, fmt!("{v}"))?;
///     Ok(v)
/// })?;
/// assert_eq!(new, 42);
/// assert_eq!(xenstore::read_u32(p)?, 42);
///
/// // An error inside aborts: the value stays.
/// let r: Result<()> = xenstore::transaction(5, |tx| {
///     tx.write(p, b"0")?;
///     Err(EPERM)
/// });
/// assert_eq!(r.err(), Some(EPERM));
/// assert_eq!(xenstore::read_u32(p)?, 42);
/// xenstore::rm(p)?;
/// # Ok::<(), Error>(())
/// ```
pub fn transaction<T>(attempts: u32, mut f: impl FnMut(&Transaction) -> Result<T>) -> Result<T> {
    if attempts == 0 {
        return Err(EINVAL);
    }
    for _ in 0..attempts {
        let tx = Transaction::start()?;
        let value = match f(&tx) {
            Ok(v) => v,
            Err(e) if e == EAGAIN => continue,
            Err(e) => return Err(e),
        };
        match tx.commit() {
            Ok(()) => return Ok(value),
            Err(e) if e == EAGAIN => continue,
            Err(e) => return Err(e),
        }
    }
    Err(EAGAIN)
}

/// What a [`Watch`] calls when its path (or anything below it) changes.
///
/// Callbacks run in process context without locks held (on the core's watch thread): they may
/// sleep and use xenstore. Callbacks of one watch do not run concurrently. Xenstore may merge or
/// report spurious events; re-read the state rather than counting events.
///
/// Closures `Fn(&CStr) + Send + Sync` implement this trait.
pub trait WatchHandler: Send + Sync {
    /// `path` changed: the watched path or a path below it, as xenstored reported it.
    fn changed(&self, path: &CStr);
}

impl<F: Fn(&CStr) + Send + Sync> WatchHandler for F {
    fn changed(&self, path: &CStr) {
        self(path)
    }
}

/// A registered xenstore watch; dropping it unregisters it.
///
/// Xenstore fires a watch once when it is registered, then for every change at or below its
/// path. When the drop returns, no callback of the watch runs any more (except, if the drop
/// happens inside the watch's own callback, that callback itself).
///
/// # Examples
///
/// ```
/// use kernel::sync::atomic::{Atomic, Relaxed};
/// use kernel::time::{delay::fsleep, Delta};
/// use kernel::xen::xenstore::{self, PathStr, Watch};
///
/// if !kernel::xen::is_xen_domain() {
///     return Ok(());
/// }
/// struct Counter(Atomic<u32>);
/// impl xenstore::WatchHandler for Counter {
///     fn changed(&self, _path: &CStr) {
///         self.0.add(1, Relaxed);
///     }
/// }
/// fn wait_for(w: &Watch<Counter>, n: u32) -> bool {
///     for _ in 0..500 {
///         if w.handler().0.load(Relaxed) >= n {
///             return true;
///         }
///         fsleep(Delta::from_millis(10));
///     }
///     false
/// }
///
/// let p = PathStr::new(c"data/rust-doctest/watched")?;
/// let w = KBox::pin_init(Watch::new(p, Counter(Atomic::new(0))), GFP_KERNEL)?;
/// // Fires once on registration...
/// assert!(wait_for(&w, 1));
/// // ... and on a change.
/// let before = w.handler().0.load(Relaxed);
/// xenstore::write(p, b"x")?;
/// assert!(wait_for(&w, before + 1));
/// drop(w);
/// xenstore::rm(p)?;
/// # Ok::<(), Error>(())
/// ```
#[pin_data(PinnedDrop)]
pub struct Watch<H: WatchHandler> {
    /// The watched path: `raw.node` points into it.
    path: Path,
    handler: Arc<H>,
    /// Registered with `register_xenbus_watch()` once initialised.
    #[pin]
    raw: Opaque<bindings::xenbus_watch>,
}

// SAFETY: The watch may be unregistered (dropped) from any thread; the handler is `Send + Sync`
// and the C API allows callbacks on any thread.
unsafe impl<H: WatchHandler> Send for Watch<H> {}

// SAFETY: `&Watch` only gives access to the path and the `Sync` handler.
unsafe impl<H: WatchHandler> Sync for Watch<H> {}

impl<H: WatchHandler + 'static> Watch<H> {
    /// Registers a watch on `path` (and everything below it) that calls `handler`.
    ///
    /// Special paths (`@introduceDomain`, `@releaseDomain`) are accepted.
    pub fn new(path: &PathStr, handler: H) -> impl PinInit<Self, Error> {
        let path = path.to_path();
        let node = path.as_ref().map_or(ptr::null(), |p| p.as_char_ptr());
        let handler = Arc::new(handler, GFP_KERNEL);
        try_pin_init!(Self {
            path: path?,
            handler: handler?,
            raw <- Opaque::try_ffi_init(move |slot: *mut bindings::xenbus_watch| {
                let mut w: bindings::xenbus_watch = pin_init::zeroed();
                // `node` points into the heap buffer of `path`, which moving the `Path` into
                // `self` does not move; it lives until `drop` has unregistered the watch.
                w.node = node;
                w.callback = Some(Self::callback);
                // SAFETY: `slot` is valid for writes (`try_ffi_init`), pinned from now on, and
                // every other field of `Self` is initialised (they come first).
                unsafe { slot.write(w) };
                // SAFETY: `slot` is a valid watch that stays valid and unmoved until `drop`
                // unregisters it.
                to_result(unsafe { bindings::register_xenbus_watch(slot) })
            }),
        }? Error)
    }
}

impl<H: WatchHandler> Watch<H> {
    /// The watched path.
    pub fn path(&self) -> &PathStr {
        &self.path
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// # Safety
    ///
    /// Called by the xenbus core only, for a watch registered by [`Watch::new`], with
    /// NUL-terminated `path` and `token`.
    unsafe extern "C" fn callback(
        watch: *mut bindings::xenbus_watch,
        path: *const c_char,
        _token: *const c_char,
    ) {
        let raw = Opaque::cast_from(watch.cast_const());
        // SAFETY: Only `Watch::new` registers `Self::callback`, on the `raw` field of a `Self`.
        let this = unsafe { crate::container_of!(raw, Self, raw) };
        // SAFETY: The core calls the callback only while the watch is registered, and `drop`
        // unregisters it before the fields are dropped, waiting for a running callback (unless
        // `drop` runs inside this callback: then the clone keeps the handler alive).
        let handler = unsafe { (*this).handler.clone() };
        if path.is_null() {
            return;
        }
        // SAFETY: The core passes a NUL-terminated path that lives for the whole call.
        let path = unsafe { CStr::from_char_ptr(path) };
        handler.changed(path);
    }
}

#[pinned_drop]
impl<H: WatchHandler> PinnedDrop for Watch<H> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `raw` was registered when `self` was initialised (an initialiser that fails
        // does not produce a `Watch`). Both cores wait for a running callback before returning.
        unsafe { bindings::unregister_xenbus_watch(self.raw.get()) };
    }
}

/// Creates the node `path` (empty) unless it exists. Rust core only.
///
/// # Examples
///
/// ```
/// use kernel::xen::xenstore::{self, PathStr, Perm, PermKind};
///
/// if !kernel::xen::is_xen_domain() {
///     return Ok(());
/// }
/// let p = PathStr::new(c"data/rust-doctest/dir2")?;
/// xenstore::mkdir(p)?;
/// assert!(xenstore::exists(p));
/// assert_eq!(xenstore::read(p)?.len(), 0);
///
/// let domid = xenstore::read_u32(PathStr::new(c"domid")?)?;
/// let perms = xenstore::get_perms(p)?;
/// assert_eq!(perms.first().map(|o| o.domid), Some(domid));
/// xenstore::set_perms(p, &[Perm::new(PermKind::None, domid), Perm::new(PermKind::Read, 0)])?;
/// let perms = xenstore::get_perms(p)?;
/// assert_eq!(perms.len(), 2);
/// assert_eq!(perms.get(1).copied(), Some(Perm::new(PermKind::Read, 0)));
/// xenstore::rm(p)?;
///
/// let home = xenstore::domain_path(domid)?;
/// let want = xenstore::Path::try_from_fmt(fmt!("/local/domain/{domid}"))?;
/// assert_eq!(home.as_bytes(), want.as_bytes());
/// # Ok::<(), Error>(())
/// ```
#[cfg(CONFIG_XEN_XENBUS_CORE_RUST)]
pub fn mkdir(path: &PathStr) -> Result {
    raw::mkdir(raw::NIL, path)
}

/// The permissions of `path`: the owner with the access of everyone else first, then
/// exceptions. Rust core only.
#[cfg(CONFIG_XEN_XENBUS_CORE_RUST)]
pub fn get_perms(path: &PathStr) -> Result<KVec<Perm>> {
    raw::get_perms(raw::NIL, path)
}

/// Sets the permissions of `path` (see [`get_perms`]; `perms` must not be empty). Rust core
/// only.
#[cfg(CONFIG_XEN_XENBUS_CORE_RUST)]
pub fn set_perms(path: &PathStr, perms: &[Perm]) -> Result {
    raw::set_perms(raw::NIL, path, perms)
}

/// The home path of domain `domid` (`/local/domain/<domid>`), as xenstored reports it. Rust
/// core only.
#[cfg(CONFIG_XEN_XENBUS_CORE_RUST)]
pub fn domain_path(domid: u32) -> Result<Path> {
    // SAFETY: No preconditions.
    let p = from_err_ptr(unsafe { bindings::xenbus_rs_get_domain_path(domid) })?;
    if p.is_null() {
        return Err(EIO);
    }
    let _guard = KmallocGuard(p.cast());
    // SAFETY: The core returns a `kmalloc`ed NUL-terminated string, freed by `_guard` later.
    let s = unsafe { CStr::from_char_ptr(p) };
    Path::new(s.to_bytes())
}

#[cfg(CONFIG_XEN_XENBUS_CORE_RUST)]
impl Transaction {
    /// Creates a node in the transaction, see [`mkdir`].
    pub fn mkdir(&self, path: &PathStr) -> Result {
        raw::mkdir(self.t, path)
    }

    /// Reads permissions in the transaction, see [`get_perms`].
    pub fn get_perms(&self, path: &PathStr) -> Result<KVec<Perm>> {
        raw::get_perms(self.t, path)
    }

    /// Sets permissions in the transaction, see [`set_perms`].
    pub fn set_perms(&self, path: &PathStr, perms: &[Perm]) -> Result {
        raw::set_perms(self.t, path, perms)
    }
}
