// SPDX-License-Identifier: GPL-2.0

//! MessageReader: streaming reassembly.

use xenstore_proto::wire::{
    Header, MessageReader, MsgType, Request, WireError, HEADER_LEN, MESSAGE_MAX, PAYLOAD_MAX,
};

fn encoded(req: &Request<'_>, req_id: u32, tx_id: u32) -> Vec<u8> {
    let mut buf = vec![0u8; MESSAGE_MAX];
    let n = req.encode(req_id, tx_id, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn raw_msg(ty: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let h = Header {
        ty,
        req_id,
        tx_id: 0,
        len: payload.len() as u32,
    };
    [h.to_bytes().to_vec(), payload.to_vec()].concat()
}

fn owned(r: &MessageReader) -> Option<(Header, Vec<u8>)> {
    r.message().map(|(h, p)| (h, p.to_vec()))
}

#[test]
fn whole_message_in_one_push() {
    let bytes = raw_msg(2, 7, b"hello");
    let mut r = MessageReader::new();
    assert!(r.is_idle());
    assert_eq!(r.wanted(), HEADER_LEN);
    assert_eq!(r.push(&bytes), Ok(bytes.len()));
    let (h, p) = owned(&r).unwrap();
    assert_eq!(h, Header::new(MsgType::Read, 7, 0, 5));
    assert_eq!(p, b"hello");
    assert!(!r.is_idle());
    assert_eq!(r.wanted(), 0);
    // Complete: further input is not consumed.
    assert_eq!(r.push(b"more"), Ok(0));
    r.reset();
    assert!(r.is_idle());
    assert!(r.message().is_none());
}

#[test]
fn empty_payload_message() {
    let bytes = raw_msg(16, 1, b"");
    let mut r = MessageReader::default();
    assert_eq!(r.push(&bytes), Ok(16));
    let (h, p) = owned(&r).unwrap();
    assert_eq!(h.len, 0);
    assert!(p.is_empty());
}

#[test]
fn one_byte_at_a_time() {
    let bytes = encoded(&Request::write(b"/local/domain/0/x", b"value"), 3, 4);
    let mut r = MessageReader::new();
    for (i, b) in bytes.iter().enumerate() {
        assert!(r.message().is_none(), "complete too early at {i}");
        if i < HEADER_LEN {
            assert!(r.header().is_none());
        }
        assert_eq!(r.push(std::slice::from_ref(b)), Ok(1), "byte {i}");
    }
    let (h, p) = owned(&r).unwrap();
    assert_eq!(h, Header::new(MsgType::Write, 3, 4, 23));
    assert_eq!(p, &bytes[HEADER_LEN..]);
}

#[test]
fn split_at_every_position() {
    let bytes = encoded(&Request::watch(b"backend/vif", b"xbrs:1:1"), 9, 0);
    for cut in 0..=bytes.len() {
        let mut r = MessageReader::new();
        assert_eq!(r.push(&bytes[..cut]), Ok(cut));
        assert_eq!(r.push(&bytes[cut..]), Ok(bytes.len() - cut));
        let (h, p) = owned(&r).unwrap();
        assert_eq!(h.req_id, 9, "cut {cut}");
        assert_eq!(p, &bytes[HEADER_LEN..], "cut {cut}");
    }
    // Every pair of cut points.
    for a in 0..=bytes.len() {
        for b in a..=bytes.len() {
            let mut r = MessageReader::new();
            r.push(&bytes[..a]).unwrap();
            r.push(&bytes[a..b]).unwrap();
            r.push(&bytes[b..]).unwrap();
            assert_eq!(owned(&r).unwrap().1, &bytes[HEADER_LEN..]);
        }
    }
}

#[test]
fn several_messages_back_to_back() {
    let msgs = [
        raw_msg(15, 0, b"/a\0tok\0"),
        raw_msg(2, 1, b""),
        raw_msg(16, 2, b"ENOENT\0"),
        raw_msg(1, 3, &vec![b'x'; PAYLOAD_MAX]),
        raw_msg(6, 4, b"5\0"),
    ];
    let stream: Vec<u8> = msgs.concat();
    for chunk in [1usize, 2, 3, 7, 16, 17, 100, 4111, 4112, 4113, stream.len()] {
        let mut r = MessageReader::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            let mut off = 0;
            while off < piece.len() {
                let n = r.push(&piece[off..]).unwrap();
                off += n;
                if let Some((h, p)) = r.message() {
                    got.push([h.to_bytes().to_vec(), p.to_vec()].concat());
                    r.reset();
                } else {
                    assert_eq!(off, piece.len());
                }
            }
        }
        assert!(r.is_idle(), "chunk {chunk}");
        assert_eq!(got, msgs, "chunk {chunk}");
    }
}

#[test]
fn bad_header_length_fails_and_sticks() {
    let mut bytes = raw_msg(2, 1, b"");
    bytes[12..16].copy_from_slice(&4097u32.to_ne_bytes());
    let mut r = MessageReader::new();
    assert_eq!(r.push(&bytes[..15]), Ok(15));
    assert_eq!(r.push(&bytes[15..]), Err(WireError::PayloadTooLong));
    assert!(r.is_failed());
    assert!(!r.is_idle());
    assert_eq!(r.wanted(), 0);
    assert!(r.spare_mut().is_empty());
    assert!(r.message().is_none());
    assert_eq!(r.push(b"xxxx"), Err(WireError::PayloadTooLong));
    assert_eq!(r.commit(0), Err(WireError::PayloadTooLong));
    // The header is still visible for logging.
    assert_eq!(r.header().map(|h| h.len), Some(4097));
    r.reset();
    assert!(r.is_idle());
    let good = raw_msg(2, 1, b"ok");
    assert_eq!(r.push(&good), Ok(good.len()));
    assert!(r.message().is_some());
}

#[test]
fn huge_lengths_rejected_in_one_push() {
    for len in [4097u32, 8192, 0x8000_0000, u32::MAX] {
        let h = Header {
            ty: 2,
            req_id: 1,
            tx_id: 0,
            len,
        };
        let mut r = MessageReader::new();
        let mut input = h.to_bytes().to_vec();
        input.extend_from_slice(&[0u8; 64]);
        assert_eq!(r.push(&input), Err(WireError::PayloadTooLong));
    }
}

#[test]
fn max_payload_accepted() {
    let bytes = raw_msg(2, 1, &vec![7u8; PAYLOAD_MAX]);
    let mut r = MessageReader::new();
    assert_eq!(r.push(&bytes), Ok(MESSAGE_MAX));
    assert_eq!(r.message().unwrap().1.len(), PAYLOAD_MAX);
}

#[test]
fn spare_and_commit_interface() {
    let bytes = raw_msg(2, 1, b"abcdef");
    let mut r = MessageReader::new();
    // Header first: exactly 16 bytes wanted.
    assert_eq!(r.spare_mut().len(), 16);
    r.spare_mut()[..10].copy_from_slice(&bytes[..10]);
    r.commit(10).unwrap();
    assert_eq!(r.wanted(), 6);
    assert_eq!(r.commit(7), Err(WireError::Overrun));
    r.spare_mut().copy_from_slice(&bytes[10..16]);
    r.commit(6).unwrap();
    // Then exactly the payload.
    assert_eq!(r.wanted(), 6);
    assert_eq!(r.spare_mut().len(), 6);
    r.spare_mut().copy_from_slice(&bytes[16..]);
    r.commit(6).unwrap();
    assert_eq!(r.wanted(), 0);
    assert_eq!(r.commit(1), Err(WireError::Overrun));
    assert_eq!(r.commit(0), Ok(()));
    assert_eq!(r.message().unwrap().1, b"abcdef");
}

#[test]
fn unknown_type_still_framed() {
    let bytes = [raw_msg(9999, 5, b"zz"), raw_msg(2, 6, b"ok")].concat();
    let mut r = MessageReader::new();
    let n = r.push(&bytes).unwrap();
    assert_eq!(n, 18);
    let (h, p) = r.message().unwrap();
    assert_eq!(h.msg_type(), None);
    assert_eq!(p, b"zz");
    r.reset();
    r.push(&bytes[n..]).unwrap();
    assert_eq!(r.message().unwrap().0.req_id, 6);
}
