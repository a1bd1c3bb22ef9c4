// SPDX-License-Identifier: GPL-2.0

//! The `file_operations` of `/dev/xen/xenbus`, built by hand (the kernel crate's `MiscDevice`
//! has no `poll`), as Rust Binder does. Exported as `xen_xenbus_fops` for xenfs's
//! `/proc/xen/xenbus`; the glue registers the misc device with it. Everything unsafe about
//! the device is in this file; the logic is in [`crate::dev`].

use crate::{connection, dev::XsFile};
use kernel::{
    bindings,
    fs::{file, File},
    prelude::*,
    sync::{poll::PollTable, Arc},
    types::ForeignOwnable,
    uaccess::{UserPtr, UserSlice},
};

/// Makes a C operations table usable as a `static`.
#[repr(transparent)]
pub(crate) struct AssertSync<T>(T);
// SAFETY: Only used for a table of function pointers that is never written.
unsafe impl<T> Sync for AssertSync<T> {}

/// The device's file operations (the C core exports the same symbol).
#[no_mangle]
#[used]
pub(crate) static xen_xenbus_fops: AssertSync<bindings::file_operations> =
    AssertSync(bindings::file_operations {
        open: Some(xenbus_dev_open),
        release: Some(xenbus_dev_release),
        read: Some(xenbus_dev_read),
        write: Some(xenbus_dev_write),
        poll: Some(xenbus_dev_poll),
        ..pin_init::zeroed()
    });

/// # Safety
///
/// Called by the VFS with a valid inode and a new file.
unsafe extern "C" fn xenbus_dev_open(
    inode: *mut bindings::inode,
    filp: *mut bindings::file,
) -> c_int {
    let Some(c) = connection::get() else {
        return ENOENT.to_errno();
    };
    // SAFETY: Reading an exported variable set during bring-up.
    if unsafe { bindings::xen_store_evtchn } == 0 {
        return ENOENT.to_errno();
    }
    // SAFETY: `inode` and `filp` are valid for the duration of the call (VFS contract).
    unsafe { bindings::stream_open(inode, filp) };
    match XsFile::new(c.store.clone(), c.watches.clone()) {
        Ok(f) => {
            // SAFETY: `filp` is valid and its `private_data` is ours until release.
            unsafe { (*filp).private_data = f.into_foreign().cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by the VFS once, when the last reference to a file opened by `xenbus_dev_open` goes.
unsafe extern "C" fn xenbus_dev_release(
    _inode: *mut bindings::inode,
    filp: *mut bindings::file,
) -> c_int {
    // SAFETY: `private_data` was set from `into_foreign` in `xenbus_dev_open`; this is its only
    // release.
    let f = unsafe { Arc::<XsFile>::from_foreign((*filp).private_data.cast()) };
    f.close();
    0
}

/// # Safety
///
/// `filp` is a file opened by `xenbus_dev_open` (VFS contract).
unsafe fn file_state<'a>(
    filp: *mut bindings::file,
) -> <Arc<XsFile> as ForeignOwnable>::Borrowed<'a> {
    // SAFETY: `private_data` holds our `Arc` until `xenbus_dev_release`, which the VFS does not
    // run while another file operation is in progress.
    unsafe { Arc::<XsFile>::borrow((*filp).private_data.cast()) }
}

/// # Safety
///
/// `filp` is a file opened by `xenbus_dev_open`.
unsafe fn nonblocking(filp: *mut bindings::file) -> bool {
    // SAFETY: `filp` is valid for the duration of the file operation (VFS contract).
    let file = unsafe { File::from_raw_file(filp) };
    file.flags() & file::flags::O_NONBLOCK != 0
}

/// # Safety
///
/// VFS contract: `filp` is ours, `buf` a user pointer to `len` bytes.
unsafe extern "C" fn xenbus_dev_read(
    filp: *mut bindings::file,
    buf: *mut c_char,
    len: usize,
    _ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: Per the function's contract.
    let (f, nonblock) = unsafe { (file_state(filp), nonblocking(filp)) };
    let writer = UserSlice::new(UserPtr::from_ptr(buf.cast()), len).writer();
    match f.read(writer, nonblock) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// VFS contract: `filp` is ours, `buf` a user pointer to `len` bytes.
unsafe extern "C" fn xenbus_dev_write(
    filp: *mut bindings::file,
    buf: *const c_char,
    len: usize,
    _ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: Per the function's contract.
    let (f, nonblock) = unsafe { (file_state(filp), nonblocking(filp)) };
    let reader = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), len).reader();
    match f.write(reader, nonblock) {
        Ok(n) => n as isize,
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// VFS contract: `filp` is ours, `wait` a poll table or `NULL`.
unsafe extern "C" fn xenbus_dev_poll(
    filp: *mut bindings::file,
    wait: *mut bindings::poll_table,
) -> bindings::__poll_t {
    // SAFETY: Per the function's contract.
    let f = unsafe { file_state(filp) };
    // SAFETY: `filp` is valid for the duration of the call.
    let file = unsafe { File::from_raw_file(filp) };
    // SAFETY: `wait` is valid for the duration of the call (or NULL, which poll_wait accepts).
    let table = unsafe { PollTable::from_raw(wait) };
    table.register_wait(file, f.poll_condvar());
    if f.readable() {
        bindings::POLLIN | bindings::POLLRDNORM
    } else {
        0
    }
}
