// SPDX-License-Identifier: GPL-2.0

//! Kernel threads for the core's long-lived loops (ring I/O, watch dispatch).
//!
//! The kernel crate has no kthread abstraction; this is the one place that calls
//! `kthread_create_on_node` directly. The core is built in and its threads run for the lifetime
//! of the kernel, so there is no stop path: a thread owns an `Arc` of its state and returns only
//! if its loop does.

use kernel::{bindings, prelude::*, sync::Arc};

/// The body of a core thread.
pub(crate) trait ThreadBody: Send + Sync + 'static {
    /// Runs the thread's loop.
    fn run(self: Arc<Self>);
}

/// The thread function: runs the body it was given.
///
/// # Safety
///
/// `data` comes from `Arc::into_raw` in [`spawn`] and is passed to exactly one thread.
unsafe extern "C" fn trampoline<T: ThreadBody>(data: *mut c_void) -> c_int {
    // SAFETY: `data` came from `Arc::into_raw` in `spawn`, and ownership of that reference was
    // passed to this thread, which is its only user.
    let body = unsafe { Arc::<T>::from_raw(data.cast::<T>()) };
    body.run();
    0
}

/// Starts a kernel thread named `name` running `body.run()`; returns its task pointer.
pub(crate) fn spawn<T: ThreadBody>(
    name: &CStr,
    body: Arc<T>,
) -> Result<*mut bindings::task_struct> {
    let data = Arc::into_raw(body).cast_mut().cast::<c_void>();
    // SAFETY: The thread function matches the expected signature and takes ownership of `data`.
    // The format is a literal "%s" with one NUL-terminated string argument.
    let task = unsafe {
        bindings::kthread_create_on_node(
            Some(trampoline::<T>),
            data,
            bindings::NUMA_NO_NODE,
            c"%s".as_char_ptr(),
            name.as_char_ptr(),
        )
    };
    let task = match kernel::error::from_err_ptr(task) {
        Ok(task) => task,
        Err(e) => {
            // SAFETY: The thread was never created, so the reference was not passed to it.
            drop(unsafe { Arc::<T>::from_raw(data.cast::<T>()) });
            return Err(e);
        }
    };
    // SAFETY: `task` is a freshly created, not yet running kernel thread.
    unsafe { bindings::wake_up_process(task) };
    Ok(task)
}

/// Whether the calling context is the kernel thread `task`.
pub(crate) fn is_current(task: *mut bindings::task_struct) -> bool {
    // SAFETY: Reading the current task pointer is always valid in process context.
    let current = unsafe { bindings::get_current() };
    !task.is_null() && core::ptr::eq(current, task)
}
