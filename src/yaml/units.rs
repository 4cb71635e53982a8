//! Serde types for human-written quantities: durations (`15s`, `1h 30m`) and sizes (`32MiB`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::diagnostic::message_with_hint;

/// A value that failed to parse, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    /// What is wrong, quoting the input.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hint {
            Some(hint) => f.write_str(&message_with_hint(&self.message, hint)),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for UnitError {}

/// Parses a humantime duration, refusing bare numbers: "15" could mean seconds or minutes,
/// and a config that silently picks one is a config that pages someone at night.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(UnitError {
            message: format!("invalid duration {text:?}: a number needs a unit"),
            hint: Some(format!("add a unit, e.g. {trimmed}s")),
        });
    }
    humantime::parse_duration(trimmed).map_err(|err| UnitError {
        message: format!("invalid duration {text:?}: {err}"),
        hint: Some("write e.g. 500ms, 15s, 30m, 1h 30m or 7d".to_owned()),
    })
}

/// A duration written as a humantime string (`15s`, `30m`, `1h 30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationStr(pub Duration);

impl DurationStr {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<DurationStr> for Duration {
    fn from(value: DurationStr) -> Self {
        value.0
    }
}

impl fmt::Display for DurationStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for DurationStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationStr;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"15s\" or \"1h 30m\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationStr, E> {
                parse_duration(v).map(DurationStr).map_err(E::custom)
            }

            // YAML reads `poll_interval: 15` as a number; say the same as for "15".
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationStr, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationStr, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationStr, E> {
                self.visit_str(&v.to_string())
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

/// Units accepted by [`parse_size`], lower-cased, with their factor.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("kb", 1_000),
    ("kib", 1 << 10),
    ("mb", 1_000_000),
    ("mib", 1 << 20),
    ("gb", 1_000_000_000),
    ("gib", 1 << 30),
];

/// Parses a byte size: a plain number of bytes or a number with a unit (`32MiB`, `512 KB`).
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let factor = SIZE_UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, factor)| *factor);
    let invalid = |why: &str| UnitError {
        message: format!("invalid size {text:?}: {why}"),
        hint: Some("write a number of bytes or use B, KB, KiB, MB, MiB, GB or GiB".to_owned()),
    };
    let Some(factor) = factor else {
        return Err(invalid("unknown unit"));
    };
    let number: u64 = number
        .parse()
        .map_err(|_| invalid("expected a whole number"))?;
    number
        .checked_mul(factor)
        .ok_or_else(|| invalid("too large"))
}

/// A size in bytes, written as a number or with a unit (`32MiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = ByteSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 33554432 or \"32MiB\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                self.visit_str(&v.to_string())
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        let err = parse_duration("15").unwrap_err();
        assert_eq!(
            err.message,
            "invalid duration \"15\": a number needs a unit"
        );
        assert_eq!(err.hint.as_deref(), Some("add a unit, e.g. 15s"));
        assert!(parse_duration("15 parsecs").is_err());
    }

    #[test]
    fn duration_from_yaml_number_gets_the_same_hint() {
        let err = serde_yaml::from_str::<DurationStr>("15").unwrap_err();
        assert!(err.to_string().contains("(hint: add a unit, e.g. 15s)"));
        let ok: DurationStr = serde_yaml::from_str("\"1h 30m\"").unwrap();
        assert_eq!(ok.get(), Duration::from_secs(5400));
    }

    #[test]
    fn sizes_take_bytes_or_units() {
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert_eq!(parse_size("25 MiB"), Ok(25 << 20));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("32 megs").is_err());
        assert!(parse_size("1.5MiB").is_err());
        let n: ByteSize = serde_yaml::from_str("1048576").unwrap();
        assert_eq!(n.bytes(), 1 << 20);
    }
}
