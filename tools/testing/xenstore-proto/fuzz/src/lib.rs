// SPDX-License-Identifier: GPL-2.0

//! Fuzz bodies shared by the libFuzzer targets and the smoke driver.

use xenstore_proto::errno::XsErrno;
use xenstore_proto::mem_page::MemPage;
use xenstore_proto::path;
use xenstore_proto::reqtable::ReqTable;
use xenstore_proto::ring::{self, check_indexes, peer_write_rsp, ring_read};
use xenstore_proto::state::XenbusState;
use xenstore_proto::token;
use xenstore_proto::wire::{self, Header, MessageReader, MsgType, WireError, PAYLOAD_MAX};

/// Runs every reply parser on one message: the first 16 bytes are the
/// header (type selects the parser), the rest the payload. Also runs the
/// type-independent parsers on the payload.
pub fn reply_parser(data: &[u8]) {
    let Some(h) = Header::from_slice(data) else {
        return;
    };
    let payload = data.get(16..).unwrap_or(&[]);
    let _ = h.check();
    match h.msg_type() {
        Some(MsgType::Error) => {
            let e = wire::error_of(payload);
            assert!(e.errno() > 0);
            if e.is_known() {
                assert_eq!(XsErrno::from_wire(e.wire_name().as_bytes()), e);
            } else {
                assert_eq!(e.errno(), xenstore_proto::errno::EINVAL);
            }
        }
        Some(MsgType::WatchEvent) => {
            if let Ok((p, t)) = wire::watch_event(payload) {
                assert_eq!(p.len() + t.len() + 2, payload.len());
                if let Some((id, gen)) = token::parse(t) {
                    let mut buf = [0u8; token::TOKEN_MAX];
                    assert_eq!(token::format(id, gen, &mut buf), t);
                }
                let _ = path::validate(p);
            }
        }
        Some(MsgType::TransactionStart) => {
            if let Ok(id) = wire::transaction_id(payload) {
                assert_ne!(id, 0);
            }
        }
        Some(MsgType::DirectoryPart) => {
            if let Ok(p) = wire::directory_part(payload) {
                let n: usize = p.children.clone().map(|c| c.len() + 1).sum();
                assert_eq!(n, p.consumed);
                assert!(p.complete || p.consumed > 0);
            }
        }
        Some(MsgType::GetPerms) => {
            if let Ok(it) = wire::perms(payload) {
                assert!(it.count() >= 1);
            }
        }
        Some(MsgType::Read) => {
            if let Ok(s) = XenbusState::parse(payload) {
                assert_eq!(XenbusState::from_u32(s.as_u32()), Some(s));
            }
        }
        _ => {
            if let Ok(it) = wire::strings(payload) {
                let n: usize = it.map(|s| s.len() + 1).sum();
                assert_eq!(n, payload.len());
            }
        }
    }
    // Everything on everything.
    let _ = wire::single_string(payload);
    let _ = wire::decimal_u64(payload);
    let _ = wire::Perm::parse(payload);
    let _ = path::validate(payload);
    let mut out = [0u8; 256];
    let _ = path::join(payload, payload, &mut out);
    let mut t = ReqTable::<16>::new();
    let _ = t.alloc();
    let _ = t.lookup(h.req_id);
}

/// Treats the input as a hostile xenstored: the first 16 bytes are the
/// initial ring indexes and a chunking seed, the rest is the response
/// stream. Feeds it through the response ring in varying chunk sizes and
/// reassembles messages with `MessageReader`, checking framing invariants.
pub fn ring_reader(data: &[u8]) {
    let Some(seed) = data.get(..16) else {
        return;
    };
    let word = |i: usize| {
        let b = seed.get(i..i + 4).unwrap_or(&[0; 4]);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    };
    let (rsp_start, skew, mut chunk_seed, req_start) = (word(0), word(4), word(8), word(12));
    let stream = data.get(16..).unwrap_or(&[]);
    let page = MemPage::with_indexes(req_start, rsp_start);
    // Optionally corrupt the producer index (hostile peer).
    if skew & 0xff == 0xff {
        page.rsp_prod.set(rsp_start.wrapping_add(skew >> 8));
    }
    let mut reader = MessageReader::new();
    let mut sent = 0usize;
    let mut messages = 0usize;
    for _ in 0..10_000 {
        chunk_seed ^= chunk_seed << 13;
        chunk_seed ^= chunk_seed >> 17;
        chunk_seed ^= chunk_seed << 5;
        let want = (chunk_seed as usize % 1500) + 1;
        let end = (sent + want).min(stream.len());
        match peer_write_rsp(&page, &stream[sent..end]) {
            Ok(n) => sent += n,
            Err(_) => {
                assert!(check_indexes(page.rsp_cons.get(), page.rsp_prod.get()).is_err());
                break;
            }
        }
        let mut broke = false;
        loop {
            let spare = reader.spare_mut();
            if spare.is_empty() {
                break;
            }
            match ring_read(&page, spare) {
                Ok(0) => break,
                Ok(n) => {
                    if let Err(e) = reader.commit(n) {
                        assert_eq!(e, WireError::PayloadTooLong);
                        broke = true;
                        break;
                    }
                }
                Err(ring::RingError::BadIndexes { .. }) => {
                    broke = true;
                    break;
                }
            }
            if let Some((h, p)) = reader.message() {
                assert!(p.len() <= PAYLOAD_MAX);
                assert_eq!(h.len as usize, p.len());
                reply_parser(&[h.to_bytes().as_slice(), p].concat());
                messages += 1;
                reader.reset();
            }
        }
        let drained = page.rsp_cons.get() == page.rsp_prod.get();
        if broke || (sent == stream.len() && drained) {
            break;
        }
    }
    assert_eq!(page.out_of_bounds.get(), 0);
    let _ = messages;
}

/// Deterministic pseudo-random inputs for the smoke driver.
pub fn smoke(iterations: u64, f: fn(&[u8])) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = Vec::new();
    for i in 0..iterations {
        x ^= x << 7;
        x ^= x >> 9;
        let len = (x % 6000) as usize;
        buf.clear();
        for _ in 0..len {
            x ^= x << 7;
            x ^= x >> 9;
            buf.push(x as u8);
        }
        // Bias some inputs towards valid-looking framing.
        if i % 3 == 0 && buf.len() >= 16 {
            let plen = ((x >> 20) % 300) as u32;
            buf[12..16].copy_from_slice(&plen.to_ne_bytes());
            buf[0..4].copy_from_slice(&((x >> 40) as u32 % 27).to_ne_bytes());
        }
        f(&buf);
    }
}
