//! Versioned record encoding: the `Record` trait, its one-version macro and error context.

use super::compress;
use super::error::StoreError;
use super::keys;
use super::trees::TreeName;

/// A value stored in one tree, encoded as version-tagged JSON. Sealed: the module is private,
/// so only the store's own record types implement it.
pub trait Record: Sized {
    /// The tree this record lives in (for error messages).
    const TREE: TreeName;
    /// Serializes the current version, tag included.
    fn to_json(&self) -> serde_json::Result<Vec<u8>>;
    /// Deserializes any known version and upgrades it to the current shape.
    fn from_json(bytes: &[u8]) -> serde_json::Result<Self>;
}

/// Encodes `record` into the bytes to store (compressed when large), naming its tree on failure.
pub(crate) fn encode<R: Record>(record: &R) -> Result<Vec<u8>, StoreError> {
    record
        .to_json()
        .map(compress::pack)
        .map_err(|error| StoreError::Encode {
            tree: R::TREE.as_str(),
            error,
        })
}

/// Decodes the value stored at `key`, naming the tree and key on failure.
pub(crate) fn decode<R: Record>(key: &[u8], bytes: &[u8]) -> Result<R, StoreError> {
    parsed::<R, R>(key, compress::unpack(bytes), R::from_json)
}

/// Decodes only the fields of `T` from the value stored at `key` in `R`'s tree, skipping the rest
/// unbuilt (a scan that needs an event's time, not its payload). `T` must name fields every
/// stored version of `R` has, outside a compressed middle: a record stored around one (an
/// event's payload) is read with the middle as `null`, neither decompressed nor parsed.
pub(crate) fn decode_fields<R: Record, T: serde::de::DeserializeOwned>(
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    parsed::<R, T>(key, compress::unpack_without_middle(bytes), |json| {
        serde_json::from_slice(json)
    })
}

/// `parse` applied to a stored value once `unpacked`, errors naming `R`'s tree and the key.
fn parsed<R: Record, T>(
    key: &[u8],
    unpacked: std::io::Result<std::borrow::Cow<'_, [u8]>>,
    parse: impl FnOnce(&[u8]) -> serde_json::Result<T>,
) -> Result<T, StoreError> {
    unpacked
        .map_err(serde_json::Error::io)
        .and_then(|json| parse(&json))
        .map_err(|error| StoreError::Decode {
            tree: R::TREE.as_str(),
            key: keys::describe(R::TREE, key),
            error,
        })
}

/// Implements [`Record`] for a record whose only stored version is `"1"`: `{"v":"1", ...}`.
/// When a second version appears, replace the invocation with a hand-written impl whose
/// `from_json` matches every version (see `records.rs`).
macro_rules! record_v1 {
    ($record:ident, $tree:expr) => {
        const _: () = {
            #[derive(serde::Deserialize)]
            #[serde(tag = "v")]
            enum Versions {
                #[serde(rename = "1")]
                V1($record),
            }

            #[derive(serde::Serialize)]
            #[serde(tag = "v")]
            enum Current<'a> {
                #[serde(rename = "1")]
                V1(&'a $record),
            }

            impl $crate::store::codec::Record for $record {
                const TREE: $crate::store::trees::TreeName = $tree;

                fn to_json(&self) -> serde_json::Result<Vec<u8>> {
                    serde_json::to_vec(&Current::V1(self))
                }

                fn from_json(bytes: &[u8]) -> serde_json::Result<Self> {
                    match serde_json::from_slice::<Versions>(bytes)? {
                        Versions::V1(record) => Ok(record),
                    }
                }
            }
        };
    };
}
pub(crate) use record_v1;

/// Serde for raw webhook bodies: a JSON string when the bytes are UTF-8 (GitHub's JSON bodies,
/// stored compactly and readable), an array of bytes otherwise. Both forms decode.
pub(crate) mod body_bytes {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(body) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.serialize_bytes(body),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(BodyVisitor)
    }

    struct BodyVisitor;

    impl<'de> Visitor<'de> for BodyVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string or an array of bytes")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            Ok(v.as_bytes().to_vec())
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Vec<u8>, E> {
            Ok(v.into_bytes())
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}
