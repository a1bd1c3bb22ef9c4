// SPDX-License-Identifier: GPL-2.0

//! Ring index math and the copy loops over an in-memory page.

use std::cell::{Cell, RefCell};

use xenstore_proto::mem_page::MemPage;
use xenstore_proto::ring::{
    check_indexes, mask_index, peer_read_req, peer_write_rsp, readable_chunk, request_needs_notify,
    response_needs_notify, ring_read, ring_write, writable_chunk, ConnectionState, RingError,
    RingPage, ServerError, ServerFeatures, CONNECTION_OFFSET, ERROR_OFFSET, EVTCHN_PORT_OFFSET,
    INTERFACE_LEN, REQ_CONS_OFFSET, REQ_OFFSET, REQ_PROD_OFFSET, RING_SIZE, RSP_CONS_OFFSET,
    RSP_OFFSET, RSP_PROD_OFFSET, SERVER_FEATURES_OFFSET,
};
use xenstore_proto::wire::{MessageReader, MessageWriter, Request, MESSAGE_MAX};

#[test]
fn layout_constants() {
    assert_eq!(RING_SIZE, 1024);
    assert_eq!(REQ_OFFSET, 0);
    assert_eq!(RSP_OFFSET, 1024);
    assert_eq!(REQ_CONS_OFFSET, 2048);
    assert_eq!(REQ_PROD_OFFSET, 2052);
    assert_eq!(RSP_CONS_OFFSET, 2056);
    assert_eq!(RSP_PROD_OFFSET, 2060);
    assert_eq!(SERVER_FEATURES_OFFSET, 2064);
    assert_eq!(CONNECTION_OFFSET, 2068);
    assert_eq!(ERROR_OFFSET, 2072);
    assert_eq!(EVTCHN_PORT_OFFSET, 2076);
    assert_eq!(INTERFACE_LEN, 2080);
    const { assert!(INTERFACE_LEN <= 4096) };
}

#[test]
fn mask() {
    assert_eq!(mask_index(0), 0);
    assert_eq!(mask_index(1023), 1023);
    assert_eq!(mask_index(1024), 0);
    assert_eq!(mask_index(1025), 1);
    assert_eq!(mask_index(u32::MAX), 1023);
    assert_eq!(mask_index(0xffff_fc00), 0);
}

#[test]
fn index_checks() {
    assert_eq!(check_indexes(0, 0), Ok(0));
    assert_eq!(check_indexes(0, 1024), Ok(1024));
    assert_eq!(check_indexes(5, 1029), Ok(1024));
    assert_eq!(
        check_indexes(0, 1025),
        Err(RingError::BadIndexes {
            cons: 0,
            prod: 1025
        })
    );
    // prod behind cons.
    assert_eq!(
        check_indexes(10, 9),
        Err(RingError::BadIndexes { cons: 10, prod: 9 })
    );
    // Wraparound near 2^32.
    assert_eq!(check_indexes(0xffff_fc00, 0), Ok(1024));
    assert_eq!(check_indexes(0xffff_ffff, 0), Ok(1));
    assert_eq!(check_indexes(0xffff_fc00, 0xffff_fc00), Ok(0));
    assert!(check_indexes(0xffff_fbff, 0).is_err());
    assert!(check_indexes(0, 0xffff_ffff).is_err());
    assert!(check_indexes(0x8000_0000, 0).is_err());
}

#[test]
fn chunks() {
    // Empty ring at 0: 1024 writable, nothing readable.
    assert_eq!(writable_chunk(0, 0), Ok((0, 1024)));
    assert_eq!(readable_chunk(0, 0), Ok((0, 0)));
    // Full ring.
    assert_eq!(writable_chunk(0, 1024), Ok((0, 0)));
    assert_eq!(readable_chunk(0, 1024), Ok((0, 1024)));
    // Split at the 1024 boundary: 1000..1100 pending.
    assert_eq!(readable_chunk(1000, 1100), Ok((1000, 24)));
    assert_eq!(readable_chunk(1024, 1100), Ok((0, 76)));
    assert_eq!(writable_chunk(1000, 1100), Ok((76, 924)));
    // Writable region limited by the end of the buffer.
    assert_eq!(writable_chunk(900, 1000), Ok((1000, 24)));
    assert_eq!(writable_chunk(900, 1024), Ok((0, 900)));
    // Near 2^32.
    assert_eq!(writable_chunk(0xffff_fc00, 0xffff_fc00), Ok((0, 1024)));
    assert_eq!(readable_chunk(0xffff_fff0, 0x10), Ok((1008, 16)));
    assert_eq!(readable_chunk(0, 0x10), Ok((0, 16)));
    assert_eq!(writable_chunk(0xffff_fff0, 0x10), Ok((16, 992)));
    // Hostile.
    assert!(writable_chunk(0, 1025).is_err());
    assert!(readable_chunk(0, 1025).is_err());
    assert!(writable_chunk(1, 0).is_err());
    assert!(readable_chunk(1, 0).is_err());
}

/// Exhaustive chunk invariants on every cons position and fill level.
#[test]
fn chunk_invariants_exhaustive() {
    for base in [0u32, 1000, 0xffff_fc00, 0xffff_ff00, 0xffff_ffff] {
        for cons_off in 0..1024u32 {
            let cons = base.wrapping_add(cons_off);
            for pending in [0u32, 1, 2, 23, 511, 512, 1000, 1023, 1024] {
                let prod = cons.wrapping_add(pending);
                let (roff, rlen) = readable_chunk(cons, prod).unwrap();
                let (woff, wlen) = writable_chunk(cons, prod).unwrap();
                assert_eq!(roff, mask_index(cons));
                assert_eq!(woff, mask_index(prod));
                assert!(roff + rlen <= 1024 && woff + wlen <= 1024);
                assert!(rlen as u32 <= pending);
                assert!(wlen as u32 <= 1024 - pending);
                // Two chunks cover everything.
                let (_, rlen2) = readable_chunk(cons.wrapping_add(rlen as u32), prod).unwrap();
                assert_eq!(rlen as u32 + rlen2 as u32, pending);
                let (_, wlen2) = writable_chunk(cons, prod.wrapping_add(wlen as u32)).unwrap();
                assert_eq!(wlen as u32 + wlen2 as u32, 1024 - pending);
            }
        }
    }
}

#[test]
fn write_then_peer_reads_across_2_32() {
    for start in [0u32, 0xffff_fc00, 0xffff_ffff, 0xffff_fe00, 1000] {
        let page = MemPage::with_indexes(start, start);
        let data: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
        assert_eq!(ring_write(&page, &data), Ok(1024));
        assert_eq!(page.req_prod.get(), start.wrapping_add(1024));
        // Full: nothing more fits.
        assert_eq!(ring_write(&page, b"x"), Ok(0));
        let mut out = vec![0u8; 2000];
        assert_eq!(peer_read_req(&page, &mut out), Ok(1024));
        assert_eq!(&out[..1024], &data[..]);
        assert_eq!(page.req_cons.get(), start.wrapping_add(1024));
        // Empty: nothing to read.
        assert_eq!(peer_read_req(&page, &mut out), Ok(0));
        assert_eq!(page.out_of_bounds.get(), 0);
    }
}

#[test]
fn peer_writes_then_read_across_2_32() {
    let page = MemPage::with_indexes(0, 0xffff_fff0);
    assert_eq!(peer_write_rsp(&page, b"0123456789abcdefXYZ"), Ok(19));
    assert_eq!(page.rsp_prod.get(), 3);
    let mut out = [0u8; 7];
    assert_eq!(ring_read(&page, &mut out), Ok(7));
    assert_eq!(&out, b"0123456");
    let mut out = [0u8; 64];
    assert_eq!(ring_read(&page, &mut out), Ok(12));
    assert_eq!(&out[..12], b"789abcdefXYZ");
    assert_eq!(page.rsp_cons.get(), 3);
    assert_eq!(ring_read(&page, &mut out), Ok(0));
    // Zero-length destination reads nothing.
    assert_eq!(peer_write_rsp(&page, b"q"), Ok(1));
    assert_eq!(ring_read(&page, &mut []), Ok(0));
    assert_eq!(page.rsp_cons.get(), 3);
}

#[test]
fn empty_ring_reads_nothing_and_touches_nothing() {
    let page = MemPage::with_indexes(77, 0xdead_beef);
    let mut out = [0u8; 16];
    assert_eq!(ring_read(&page, &mut out), Ok(0));
    assert_eq!(page.rsp_cons.get(), 0xdead_beef);
    assert_eq!(page.barriers.get(), 0);
    assert_eq!(ring_write(&page, b""), Ok(0));
    assert_eq!(page.req_prod.get(), 77);
}

#[test]
fn hostile_indexes_detected_before_access() {
    let cases: &[(u32, u32)] = &[
        (0, 1025),
        (100, 99),
        (0, u32::MAX),
        (0x8000_0000, 0),
        (0xffff_fc00, 1),
    ];
    for &(cons, prod) in cases {
        // Response ring (read side).
        let page = MemPage::new();
        page.rsp_cons.set(cons);
        page.rsp_prod.set(prod);
        let mut out = [0u8; 2048];
        assert_eq!(
            ring_read(&page, &mut out),
            Err(RingError::BadIndexes { cons, prod })
        );
        assert_eq!(page.rsp_cons.get(), cons, "consumer must not move");
        // Request ring (write side).
        page.req_cons.set(cons);
        page.req_prod.set(prod);
        assert_eq!(
            ring_write(&page, &[1u8; 2048]),
            Err(RingError::BadIndexes { cons, prod })
        );
        assert_eq!(page.req_prod.get(), prod, "producer must not move");
        assert_eq!(page.out_of_bounds.get(), 0);
        // Peer side detects it too.
        assert!(peer_read_req(&page, &mut out).is_err());
        assert!(peer_write_rsp(&page, &[0u8; 8]).is_err());
    }
}

/// A page whose peer consumer index jumps to a bogus value after the first
/// chunk: the second step must fail without touching memory.
#[test]
fn index_corrupted_mid_transfer() {
    struct Evil {
        inner: MemPage,
        reads: Cell<u32>,
    }
    impl RingPage for Evil {
        fn req_cons(&self) -> u32 {
            let n = self.reads.get();
            self.reads.set(n + 1);
            if n == 0 {
                self.inner.req_cons.get()
            } else {
                self.inner.req_cons.get().wrapping_add(5000)
            }
        }
        fn req_prod(&self) -> u32 {
            self.inner.req_prod()
        }
        fn set_req_prod(&self, v: u32) {
            self.inner.set_req_prod(v)
        }
        fn rsp_cons(&self) -> u32 {
            self.inner.rsp_cons()
        }
        fn rsp_prod(&self) -> u32 {
            self.inner.rsp_prod()
        }
        fn set_rsp_cons(&self, v: u32) {
            self.inner.set_rsp_cons(v)
        }
        fn write_req(&self, off: usize, src: &[u8]) {
            self.inner.write_req(off, src)
        }
        fn read_rsp(&self, off: usize, dst: &mut [u8]) {
            self.inner.read_rsp(off, dst)
        }
        fn read_barrier(&self) {}
        fn write_barrier(&self) {}
        fn full_barrier(&self) {}
    }
    // Start near the end of the buffer so the write needs two chunks.
    let evil = Evil {
        inner: MemPage::with_indexes(1000, 0),
        reads: Cell::new(0),
    };
    assert!(matches!(
        ring_write(&evil, &[9u8; 100]),
        Err(RingError::BadIndexes { .. })
    ));
    // The first chunk (24 bytes) was published, nothing else.
    assert_eq!(evil.inner.req_prod.get(), 1024);
    assert_eq!(evil.inner.out_of_bounds.get(), 0);
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    ReqCons,
    ReqProd,
    SetReqProd(u32),
    RspCons,
    RspProd,
    SetRspCons(u32),
    WriteReq(usize, usize),
    ReadRsp(usize, usize),
    Rmb,
    Wmb,
    Mb,
}

/// Records every access, to check the barrier placement.
struct Recorder {
    page: MemPage,
    log: RefCell<Vec<Op>>,
}

impl Recorder {
    fn push(&self, op: Op) {
        self.log.borrow_mut().push(op);
    }
}

impl RingPage for Recorder {
    fn req_cons(&self) -> u32 {
        self.push(Op::ReqCons);
        self.page.req_cons()
    }
    fn req_prod(&self) -> u32 {
        self.push(Op::ReqProd);
        self.page.req_prod()
    }
    fn set_req_prod(&self, v: u32) {
        self.push(Op::SetReqProd(v));
        self.page.set_req_prod(v)
    }
    fn rsp_cons(&self) -> u32 {
        self.push(Op::RspCons);
        self.page.rsp_cons()
    }
    fn rsp_prod(&self) -> u32 {
        self.push(Op::RspProd);
        self.page.rsp_prod()
    }
    fn set_rsp_cons(&self, v: u32) {
        self.push(Op::SetRspCons(v));
        self.page.set_rsp_cons(v)
    }
    fn write_req(&self, off: usize, src: &[u8]) {
        self.push(Op::WriteReq(off, src.len()));
        self.page.write_req(off, src)
    }
    fn read_rsp(&self, off: usize, dst: &mut [u8]) {
        self.push(Op::ReadRsp(off, dst.len()));
        self.page.read_rsp(off, dst)
    }
    fn read_barrier(&self) {
        self.push(Op::Rmb)
    }
    fn write_barrier(&self) {
        self.push(Op::Wmb)
    }
    fn full_barrier(&self) {
        self.push(Op::Mb)
    }
}

#[test]
fn write_barrier_order_matches_xb_write() {
    let rec = Recorder {
        page: MemPage::with_indexes(1000, 0),
        log: RefCell::new(Vec::new()),
    };
    assert_eq!(ring_write(&rec, &[1u8; 30]), Ok(30));
    use Op::*;
    assert_eq!(
        *rec.log.borrow(),
        vec![
            ReqCons,
            ReqProd,
            Mb,
            WriteReq(1000, 24),
            Wmb,
            SetReqProd(1024),
            ReqCons,
            ReqProd,
            Mb,
            WriteReq(0, 6),
            Wmb,
            SetReqProd(1030),
        ]
    );
}

#[test]
fn read_barrier_order_matches_xb_read() {
    let rec = Recorder {
        page: MemPage::with_indexes(0, 1020),
        log: RefCell::new(Vec::new()),
    };
    peer_write_rsp(&rec.page, b"abcdefgh").unwrap();
    let mut out = [0u8; 8];
    assert_eq!(ring_read(&rec, &mut out), Ok(8));
    assert_eq!(&out, b"abcdefgh");
    use Op::*;
    assert_eq!(
        *rec.log.borrow(),
        vec![
            RspCons,
            RspProd,
            Rmb,
            ReadRsp(1020, 4),
            Mb,
            SetRspCons(1024),
            RspCons,
            RspProd,
            Rmb,
            ReadRsp(0, 4),
            Mb,
            SetRspCons(1028),
        ]
    );
}

/// Messages larger than the ring, moved in several steps through a
/// simulated xenstored: guest writes a request, peer drains it; peer writes
/// a reply, guest reassembles it with MessageReader.
#[test]
fn large_messages_through_the_ring() {
    for start in [0u32, 0xffff_fc00, 0xffff_ffef, 12345] {
        let page = MemPage::with_indexes(start, start.wrapping_mul(3));
        // Request: WRITE with a 4000-byte value (4 ring-fulls).
        let value: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
        let mut w = MessageWriter::new();
        w.load(&Request::write(b"/local/domain/1/data", &value), 42, 0)
            .unwrap();
        let expected = w.message().to_vec();
        let mut server_got = Vec::new();
        let mut steps = 0;
        while !w.is_done() {
            let n = ring_write(&page, w.pending()).unwrap();
            w.advance(n).unwrap();
            let mut buf = [0u8; 300];
            loop {
                let m = peer_read_req(&page, &mut buf).unwrap();
                if m == 0 {
                    break;
                }
                server_got.extend_from_slice(&buf[..m]);
            }
            steps += 1;
            assert!(steps < 100);
        }
        assert!(steps >= 4);
        assert_eq!(server_got, expected);

        // Reply: a 4096-byte payload.
        let payload: Vec<u8> = (0..4096u32).map(|i| (i * 13) as u8).collect();
        let mut reply = xenstore_proto::wire::Header {
            ty: 2,
            req_id: 42,
            tx_id: 0,
            len: 4096,
        }
        .to_bytes()
        .to_vec();
        reply.extend_from_slice(&payload);
        let mut reader = MessageReader::new();
        let mut sent = 0;
        let mut steps = 0;
        while reader.message().is_none() {
            sent += peer_write_rsp(&page, &reply[sent..]).unwrap();
            loop {
                let n = ring_read(&page, reader.spare_mut()).unwrap();
                if n == 0 {
                    break;
                }
                reader.commit(n).unwrap();
            }
            steps += 1;
            assert!(steps < 100);
        }
        assert_eq!(sent, MESSAGE_MAX);
        let (h, p) = reader.message().unwrap();
        assert_eq!(h.req_id, 42);
        assert_eq!(p, &payload[..]);
        assert_eq!(page.out_of_bounds.get(), 0);
    }
}

#[test]
fn feature_and_state_fields() {
    let f = ServerFeatures(1 | 2 | 4 | 8 | 0x100);
    assert!(f.reconnection() && f.error() && f.watch_depth() && f.domid_any());
    let f = ServerFeatures(0xffff_fff0);
    assert!(!f.reconnection() && !f.error() && !f.watch_depth() && !f.domid_any());
    assert_eq!(ServerFeatures(2), ServerFeatures(2));
    assert!(ServerFeatures(2).error() && !ServerFeatures(2).reconnection());

    assert_eq!(ConnectionState::from_u32(0), ConnectionState::Connected);
    assert_eq!(ConnectionState::from_u32(1), ConnectionState::Reconnect);
    assert_eq!(ConnectionState::from_u32(7), ConnectionState::Unknown(7));

    assert_eq!(ServerError::from_u32(0), ServerError::None);
    assert!(!ServerError::from_u32(0).is_error());
    assert_eq!(ServerError::from_u32(1), ServerError::Comm);
    assert_eq!(ServerError::from_u32(2), ServerError::RingIdx);
    assert_eq!(ServerError::from_u32(3), ServerError::Proto);
    for v in [4u32, 99, u32::MAX] {
        assert_eq!(ServerError::from_u32(v), ServerError::Unknown(v));
        assert!(ServerError::from_u32(v).is_error());
    }
    assert!(ServerError::from_u32(3).is_error());
}

#[test]
fn request_notify_only_when_consumer_caught_up() {
    for start in [0u32, 0xffff_fff0, 1000] {
        let page = MemPage::with_indexes(start, start);
        // Empty ring: xenstored may sleep, so the first message needs a kick.
        assert_eq!(ring_write(&page, b"first"), Ok(5));
        assert!(request_needs_notify(&page, start, 5));
        // xenstored has not consumed "first": it is awake and will see the rest itself.
        let second = start.wrapping_add(5);
        assert_eq!(ring_write(&page, b"second"), Ok(6));
        assert!(!request_needs_notify(&page, second, 6));
        // It consumed part of the new bytes: it may have gone to sleep after that.
        page.req_cons.set(second.wrapping_add(3));
        assert!(request_needs_notify(&page, second, 6));
        // It consumed everything already: nothing left to wake it for.
        page.req_cons.set(second.wrapping_add(6));
        assert!(!request_needs_notify(&page, second, 6));
        // Nothing written, no kick.
        assert!(!request_needs_notify(&page, second.wrapping_add(6), 0));
    }
}

#[test]
fn response_notify_only_when_ring_was_full() {
    for start in [0u32, 0xffff_fe00, 77] {
        let page = MemPage::with_indexes(start, start);
        let mut out = vec![0u8; 4096];
        assert_eq!(peer_write_rsp(&page, &[5u8; 100]), Ok(100));
        assert_eq!(ring_read(&page, &mut out), Ok(100));
        assert!(!response_needs_notify(&page, start, 100));
        // A full ring: xenstored waits for space and must be told.
        let cons = start.wrapping_add(100);
        assert_eq!(peer_write_rsp(&page, &[6u8; 2000]), Ok(1024));
        assert_eq!(ring_read(&page, &mut out[..10]), Ok(10));
        assert!(response_needs_notify(&page, cons, 10));
        // xenstored refilled after our read: still told (it may have seen the ring full again).
        let cons = cons.wrapping_add(10);
        assert_eq!(peer_write_rsp(&page, &[7u8; 10]), Ok(10));
        assert_eq!(ring_read(&page, &mut out), Ok(1024));
        assert!(response_needs_notify(&page, cons, 1024));
        assert!(!response_needs_notify(&page, cons.wrapping_add(1024), 0));
    }
}
