// SPDX-License-Identifier: GPL-2.0

//! Host build of the kernel's xenstore protocol library.
//!
//! The modules below are the very same source files that the kernel compiles
//! as `kernel::xen::xenstore::proto` (they live in
//! `rust/kernel/xen/xenstore/proto/`). This crate is `#![no_std]` so that a
//! stray use of `std` or `alloc` in them fails here too; the lints enabled
//! below mirror the kernel's `rust_common_flags`.
//!
//! [`mem_page`] is host-only test support (an in-memory ring page).

#![no_std]
#![forbid(unsafe_code)]
#![deny(
    missing_docs,
    unreachable_pub,
    rust_2018_idioms,
    non_ascii_idents,
    clippy::all,
    clippy::as_ptr_cast_mut,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ignored_unit_patterns,
    clippy::mut_mut,
    clippy::needless_bitwise_bool,
    clippy::ptr_as_ptr,
    clippy::ptr_cast_constness,
    clippy::ref_as_ptr,
    clippy::undocumented_unsafe_blocks,
    clippy::unnecessary_safety_comment,
    clippy::unnecessary_safety_doc,
    clippy::float_arithmetic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]
#![allow(
    clippy::collapsible_if,
    clippy::collapsible_match,
    clippy::needless_lifetimes
)]

#[path = "../../../../rust/kernel/xen/xenstore/proto/errno.rs"]
pub mod errno;
#[path = "../../../../rust/kernel/xen/xenstore/proto/path.rs"]
pub mod path;
#[path = "../../../../rust/kernel/xen/xenstore/proto/reqtable.rs"]
pub mod reqtable;
#[path = "../../../../rust/kernel/xen/xenstore/proto/ring.rs"]
pub mod ring;
#[path = "../../../../rust/kernel/xen/xenstore/proto/state.rs"]
pub mod state;
#[path = "../../../../rust/kernel/xen/xenstore/proto/token.rs"]
pub mod token;
#[path = "../../../../rust/kernel/xen/xenstore/proto/wire.rs"]
pub mod wire;

pub mod mem_page;
