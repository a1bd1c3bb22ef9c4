// SPDX-License-Identifier: GPL-2.0

//! Xenstore: the protocol, and a safe API to the store for kernel Rust code.

pub mod proto;
