// SPDX-License-Identifier: GPL-2.0

//! Byte vectors filled with one `memcpy`/`memset`.
//!
//! `KVec::extend_from_slice` and `KVec::from_elem` initialise element by element; for bytes,
//! built at the kernel's `-Os` (`opt-level=s`), that stays a loop of single-byte moves, which
//! is what every request, reply and event copy on the hot paths would otherwise run.

use core::mem::MaybeUninit;
use kernel::prelude::*;

/// Appends `src` to `v`.
pub(crate) fn append(v: &mut KVec<u8>, src: &[u8]) -> Result {
    v.reserve(src.len(), GFP_KERNEL)?;
    let spare: &mut [MaybeUninit<u8>] = v.spare_capacity_mut();
    let dst = spare.get_mut(..src.len()).ok_or(ENOMEM)?;
    // SAFETY: `dst` holds `src.len()` bytes of `v`'s spare capacity (`MaybeUninit<u8>` has the
    // layout of `u8`), and `src`, borrowed shared while `v` is borrowed mutably, cannot overlap
    // it.
    unsafe {
        core::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<u8>(), src.len())
    };
    // SAFETY: The `src.len()` bytes after the current length were initialised just above and
    // lie within the capacity reserved before.
    unsafe { v.inc_len(src.len()) };
    Ok(())
}

/// A copy of `src` with room for `spare` more bytes.
pub(crate) fn copy_with_room(src: &[u8], spare: usize) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(src.len().saturating_add(spare), GFP_KERNEL)?;
    append(&mut v, src)?;
    Ok(v)
}

/// `len` zero bytes.
pub(crate) fn zeroed(len: usize) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(len, GFP_KERNEL)?;
    let dst = v.spare_capacity_mut().get_mut(..len).ok_or(ENOMEM)?;
    // SAFETY: `dst` is `len` bytes of the new vector's spare capacity.
    unsafe { core::ptr::write_bytes(dst.as_mut_ptr().cast::<u8>(), 0, len) };
    // SAFETY: The first `len` bytes of the capacity were initialised just above.
    unsafe { v.inc_len(len) };
    Ok(v)
}
