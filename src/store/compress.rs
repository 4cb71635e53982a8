//! Large records are stored lz4-compressed: sled's cost (CPU, IO, cache) grows with the size of
//! a value, and the large values are JSON (webhook payloads, run snapshots) that shrinks about
//! six times. Small records stay plain JSON. A stored value says how it is stored by its first
//! bytes, which no JSON text starts with, so every kind reads back without a flag:
//!
//! - `\0lz4`, the unpacked length (u32, little-endian), an lz4 block: written now;
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

/// The encoded record stored as `bytes`.
pub(crate) fn unpack(bytes: &[u8]) -> io::Result<Cow<'_, [u8]>> {
    if let Some(rest) = bytes.strip_prefix(&LZ4_TAG) {
        let damaged = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let (len, block) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| damaged("lz4 record without its length"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > block.len().saturating_mul(LZ4_MAX_RATIO) {
            return Err(damaged("lz4 record longer than its block can hold"));
        }
        return lz4_flex::block::decompress(block, len)
            .map(Cow::Owned)
            .map_err(|e| damaged(&format!("lz4 record: {e}")));
    }
    if bytes.starts_with(&ZSTD_MAGIC) {
        return zstd::stream::decode_all(bytes).map(Cow::Owned);
    }
    Ok(Cow::Borrowed(bytes))
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
    fn zstd_records_of_schema_2_still_read() {
        let text = serde_json::to_vec(&vec!["a payload of some length"; 500]).unwrap();
        let frame = zstd::bulk::compress(&text, 1).unwrap();
        assert!(frame.starts_with(&ZSTD_MAGIC));
        assert_eq!(unpack(&frame).unwrap(), text);
    }
}
