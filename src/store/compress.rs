//! Large records are stored lz4-compressed: sled's cost (CPU, IO, cache) grows with the size of
//! a value, and the large values are JSON (webhook payloads, run snapshots) that shrinks about
//! six times. Small records stay plain JSON. A stored value says how it is stored by its first
//! bytes, which no JSON text starts with, so every kind reads back without a flag:
//!
//! - `\0lz4`, the unpacked length (u32, little-endian), an lz4 block: written now;
//! - `\0lzs`, then a head and a tail of plain text each after its length, then the middle's
//!   unpacked length and its lz4 block: the record is head, middle, tail. Written for events
//!   whose webhook payload (the middle) was compressed before their transaction, so that the
//!   one delivery writer does not spend its time compressing ([`Packed`]);
//! - the zstd frame magic, a zstd frame: written by schema 2, still read;
//! - anything else: the JSON text itself.
//!
//! lz4 rather than zstd: at zstd's fastest level a 28 KB payload took 17.6 µs to compress, lz4
//! takes 8.4 µs for a 4.6 KB result instead of 3.2 KB, and the webhook receiver spends that on
//! every delivery (`benches/compress.rs`).

use std::borrow::Cow;
use std::io;

/// Records this long or longer are compressed.
pub(crate) const COMPRESS_FROM: usize = 2048;

/// The first bytes of an lz4-compressed record (a zero byte never starts JSON text).
const LZ4_TAG: [u8; 4] = *b"\0lz4";

/// The first bytes of a record stored as plain text around an lz4-compressed middle.
const SPLIT_TAG: [u8; 4] = *b"\0lzs";

/// The first bytes of every zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// lz4 expands at most this many times: a stored length beyond it is damage, not a record.
const LZ4_MAX_RATIO: usize = 255;

/// The bytes to store for the encoded record `json`.
pub(crate) fn pack(json: Vec<u8>) -> Vec<u8> {
    let Ok(len) = u32::try_from(json.len()) else {
        return json;
    };
    if json.len() < COMPRESS_FROM {
        return json;
    }
    let head = LZ4_TAG.len() + 4;
    let mut out = vec![0; head + lz4_flex::block::get_maximum_output_size(json.len())];
    out[..LZ4_TAG.len()].copy_from_slice(&LZ4_TAG);
    out[LZ4_TAG.len()..head].copy_from_slice(&len.to_le_bytes());
    match lz4_flex::block::compress_into(&json, &mut out[head..]) {
        // A value that does not shrink is stored as it is.
        Ok(written) if head + written < json.len() => {
            out.truncate(head + written);
            out
        }
        _ => json,
    }
}

/// A text compressed ahead of the record it goes in the middle of ([`pack_around`]).
#[derive(Debug)]
pub(crate) struct Packed {
    len: u32,
    block: Vec<u8>,
}

impl Packed {
    /// `text` compressed, when it is long enough to be worth it and shrinks.
    pub(crate) fn new(text: &[u8]) -> Option<Packed> {
        let len = u32::try_from(text.len()).ok()?;
        if text.len() < COMPRESS_FROM {
            return None;
        }
        let block = lz4_flex::block::compress(text);
        (block.len() < text.len()).then_some(Packed { len, block })
    }
}

/// The bytes to store for the record made of `head`, the text `middle` stands for, and `tail`;
/// None when `head` or `tail` is over 4 GiB.
pub(crate) fn pack_around(head: &[u8], middle: &Packed, tail: &[u8]) -> Option<Vec<u8>> {
    let head_len = u32::try_from(head.len()).ok()?;
    let tail_len = u32::try_from(tail.len()).ok()?;
    let mut out =
        Vec::with_capacity(SPLIT_TAG.len() + 12 + head.len() + tail.len() + middle.block.len());
    out.extend_from_slice(&SPLIT_TAG);
    out.extend_from_slice(&head_len.to_le_bytes());
    out.extend_from_slice(head);
    out.extend_from_slice(&tail_len.to_le_bytes());
    out.extend_from_slice(tail);
    out.extend_from_slice(&middle.len.to_le_bytes());
    out.extend_from_slice(&middle.block);
    Some(out)
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// The length-prefixed part at the start of `bytes` and what follows it.
fn split_part<'b>(bytes: &'b [u8], what: &str) -> io::Result<(&'b [u8], &'b [u8])> {
    let (len, rest) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| damaged(&format!("lz4 record without its {what} length")))?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(damaged(&format!("lz4 record shorter than its {what}")));
    }
    Ok(rest.split_at(len))
}

/// The length an lz4 block says it unpacks to, checked against what the block can hold.
fn block_len(bytes: &[u8]) -> io::Result<(usize, &[u8])> {
    let (len, block) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| damaged("lz4 record without its length"))?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > block.len().saturating_mul(LZ4_MAX_RATIO) {
        return Err(damaged("lz4 record longer than its block can hold"));
    }
    Ok((len, block))
}

/// The encoded record stored as `bytes`.
pub(crate) fn unpack(bytes: &[u8]) -> io::Result<Cow<'_, [u8]>> {
    if let Some(rest) = bytes.strip_prefix(&LZ4_TAG) {
        let (len, block) = block_len(rest)?;
        return lz4_flex::block::decompress(block, len)
            .map(Cow::Owned)
            .map_err(|e| damaged(&format!("lz4 record: {e}")));
    }
    if let Some(rest) = bytes.strip_prefix(&SPLIT_TAG) {
        let (head, rest) = split_part(rest, "head")?;
        let (tail, rest) = split_part(rest, "tail")?;
        let (len, block) = block_len(rest)?;
        let mut out = vec![0; head.len() + len + tail.len()];
        out[..head.len()].copy_from_slice(head);
        let middle = &mut out[head.len()..head.len() + len];
        match lz4_flex::block::decompress_into(block, middle) {
            Ok(written) if written == len => {}
            Ok(_) => return Err(damaged("lz4 record shorter than its length")),
            Err(e) => return Err(damaged(&format!("lz4 record: {e}"))),
        }
        out[head.len() + len..].copy_from_slice(tail);
        return Ok(Cow::Owned(out));
    }
    if bytes.starts_with(&ZSTD_MAGIC) {
        return zstd::stream::decode_all(bytes).map(Cow::Owned);
    }
    Ok(Cow::Borrowed(bytes))
}

/// The record stored as `bytes`, with the middle of a record stored around one (`\0lzs`) read
/// as `null`: for a reader that needs nothing of the middle (retention reading an event's stamp,
/// not its payload), which then neither decompresses nor parses it. Other forms unpack whole.
pub(crate) fn unpack_without_middle(bytes: &[u8]) -> io::Result<Cow<'_, [u8]>> {
    let Some(rest) = bytes.strip_prefix(&SPLIT_TAG) else {
        return unpack(bytes);
    };
    let (head, rest) = split_part(rest, "head")?;
    let (tail, _) = split_part(rest, "tail")?;
    Ok(Cow::Owned([head, b"null", tail].concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_records_shrink_and_read_back_small_ones_stay_plain() {
        let large = serde_json::to_vec(&serde_json::json!({
            "v": "1",
            "data": vec!["https://api.github.com/repos/octo/hello/pulls/2"; 200],
        }))
        .unwrap();
        let packed = pack(large.clone());
        assert!(packed.starts_with(&LZ4_TAG));
        assert!(packed.len() * 5 < large.len(), "{} bytes", packed.len());
        assert_eq!(unpack(&packed).unwrap(), large);

        let small = br#"{"v":"1","id":7}"#.to_vec();
        assert_eq!(pack(small.clone()), small);
        assert!(matches!(unpack(&small).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_record() {
        let text = serde_json::to_vec(&vec!["a payload of some length"; 500]).unwrap();
        let packed = pack(text.clone());
        assert_eq!(unpack(&packed).unwrap(), text);
        let mut cut = packed.clone();
        cut.truncate(packed.len() / 2);
        assert!(unpack(&cut).is_err());
        let mut too_long = packed.clone();
        too_long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack(&too_long).is_err(), "a length no block can hold");
        assert!(unpack(&packed[..6]).is_err(), "no length");
        let mut flipped = packed;
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0xff;
        // A flipped byte inside the block: an error, or bytes that fail to decode as a record;
        // never a panic or an out-of-bounds read.
        let _ = unpack(&flipped);
    }

    #[test]
    fn a_record_around_a_packed_middle_reads_back_whole_and_damage_is_an_error() {
        let middle = serde_json::to_vec(&vec!["a payload of some length"; 500]).unwrap();
        let packed = Packed::new(&middle).expect("a long repetitive text shrinks");
        assert!(Packed::new(b"{}").is_none(), "short texts stay plain");
        let (head, tail) = (&br#"{"v":"1","data":{"payload":"#[..], &b"}}"[..]);
        let stored = pack_around(head, &packed, tail).unwrap();
        assert!(stored.starts_with(&SPLIT_TAG));
        assert!(stored.len() * 5 < middle.len(), "{} bytes", stored.len());
        assert_eq!(unpack(&stored).unwrap(), [head, &middle, tail].concat());
        // Without its middle: the record's own text around a null, nothing decompressed.
        assert_eq!(
            unpack_without_middle(&stored).unwrap(),
            [head, b"null", tail].concat()
        );
        let plain = pack(middle.clone());
        assert_eq!(
            unpack_without_middle(&plain).unwrap(),
            middle,
            "other forms whole"
        );

        for cut in [4, 6, 10, head.len() + 10, stored.len() - 1] {
            assert!(unpack(&stored[..cut]).is_err(), "cut at {cut}");
        }
        for cut in [4, 6, 10, head.len() + 10] {
            assert!(
                unpack_without_middle(&stored[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut long_head = stored.clone();
        long_head[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpack(&long_head).is_err(), "a head longer than the record");
        let mut long_middle = stored.clone();
        let at = 8 + head.len() + 4 + tail.len();
        long_middle[at..at + 4].copy_from_slice(&(middle.len() as u32 + 1).to_le_bytes());
        assert!(
            unpack(&long_middle).is_err(),
            "a middle length its block does not fill"
        );
    }

    #[test]
    fn stored_forms_written_by_hand_still_read() {
        // What earlier builds wrote must keep reading: both lz4 forms spelled out byte by byte,
        // each block one literal run (token 0x50: five literal bytes, no match).
        let block = [&[0x50][..], b"[1,2]"].concat();
        let whole = [&LZ4_TAG[..], &5u32.to_le_bytes(), &block].concat();
        assert_eq!(unpack(&whole).unwrap(), &b"[1,2]"[..]);
        let (head, tail) = (&br#"{"v":"1","data":{"payload":"#[..], &b"}}"[..]);
        let split = [
            &SPLIT_TAG[..],
            &(head.len() as u32).to_le_bytes(),
            head,
            &(tail.len() as u32).to_le_bytes(),
            tail,
            &5u32.to_le_bytes(),
            &block,
        ]
        .concat();
        assert_eq!(
            unpack(&split).unwrap(),
            &br#"{"v":"1","data":{"payload":[1,2]}}"#[..]
        );
    }

    #[test]
    fn zstd_records_of_schema_2_still_read() {
        let text = serde_json::to_vec(&vec!["a payload of some length"; 500]).unwrap();
        let frame = zstd::bulk::compress(&text, 1).unwrap();
        assert!(frame.starts_with(&ZSTD_MAGIC));
        assert_eq!(unpack(&frame).unwrap(), text);
    }
}
