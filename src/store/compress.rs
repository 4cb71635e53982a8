//! Large records are stored zstd-compressed: sled's cost (CPU, IO, cache) grows with the size of
//! a value, and the large values are JSON (webhook payloads, run snapshots) that shrinks about
//! nine times. Small records stay plain JSON. A stored value is compressed exactly when it starts
//! with the zstd frame magic, which no JSON text does, so both kinds read back without a flag.

use std::borrow::Cow;
use std::cell::RefCell;

/// Records this long or longer are compressed.
pub(crate) const COMPRESS_FROM: usize = 2048;

/// zstd level: the fastest; higher levels gain a few percent of size for twice the CPU.
const LEVEL: i32 = 1;

/// The first bytes of every zstd frame.
const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

thread_local! {
    /// One compression context per thread: creating one costs more than compressing a payload.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// The bytes to store for the encoded record `json`.
pub(crate) fn pack(json: Vec<u8>) -> Vec<u8> {
    if json.len() < COMPRESS_FROM {
        return json;
    }
    let compressed = COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = zstd::bulk::Compressor::new(LEVEL).ok();
        }
        slot.as_mut()?.compress(&json).ok()
    });
    // A context that cannot be made or a value that does not shrink is stored as it is.
    match compressed {
        Some(packed) if packed.len() < json.len() => packed,
        _ => json,
    }
}

/// The encoded record stored as `bytes`.
pub(crate) fn unpack(bytes: &[u8]) -> std::io::Result<Cow<'_, [u8]>> {
    if bytes.starts_with(&MAGIC) {
        zstd::stream::decode_all(bytes).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(bytes))
    }
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
        assert!(packed.starts_with(&MAGIC));
        assert!(packed.len() * 5 < large.len(), "{} bytes", packed.len());
        assert_eq!(unpack(&packed).unwrap(), large);

        let small = br#"{"v":"1","id":7}"#.to_vec();
        assert_eq!(pack(small.clone()), small);
        assert!(matches!(unpack(&small).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn a_damaged_frame_is_an_error_not_a_record() {
        let mut packed = pack(vec![b'x'; 10_000]);
        packed.truncate(packed.len() / 2);
        assert!(unpack(&packed).is_err());
    }
}
