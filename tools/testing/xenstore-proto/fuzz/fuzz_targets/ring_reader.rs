// SPDX-License-Identifier: GPL-2.0

//! Fuzz target: a hostile xenstored feeding the response ring.
//!
//! With the default `libfuzzer` feature this is a libFuzzer target for
//! `cargo fuzz run ring_reader`; without it, a smoke binary that runs the
//! same body on the files given as arguments, or on deterministic
//! pseudo-random inputs.

#![cfg_attr(feature = "libfuzzer", no_main)]

#[cfg(feature = "libfuzzer")]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    xenstore_proto_fuzz::ring_reader(data);
});

#[cfg(not(feature = "libfuzzer"))]
fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        xenstore_proto_fuzz::smoke(200_000, xenstore_proto_fuzz::ring_reader);
        println!("ring_reader: smoke run OK");
    } else {
        for f in files {
            let data = std::fs::read(&f).expect("read input");
            xenstore_proto_fuzz::ring_reader(&data);
        }
    }
}
