// SPDX-License-Identifier: GPL-2.0

//! The xenstore protocol without any kernel dependency: wire format, ring arithmetic, errors,
//! paths, request-id bookkeeping, watch tokens and the xenbus device states.
//!
//! Everything here uses `core` only, so the same files are also built and tested on the host
//! (`tools/testing/xenstore-proto`). Inputs from the ring or from userspace are hostile: no
//! function in this module panics or reads out of bounds, whatever the input.

pub mod errno;
pub mod path;
pub mod reqtable;
pub mod ring;
pub mod state;
pub mod token;
pub mod wire;
