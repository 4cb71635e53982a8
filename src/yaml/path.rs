//! `YamlPath`: the key path of a value inside a YAML document, e.g. `rules[2].steps[0].with.limit`.

use std::fmt;

/// One step of a [`YamlPath`]: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// A mapping key (scalar keys in their source text).
    Key(String),
    /// A zero-based sequence index.
    Index(usize),
}

/// The path from the document root to a node. The root is the empty path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YamlPath {
    segments: Vec<Segment>,
}

impl YamlPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: impl Into<String>) -> Self {
        self.child(Segment::Key(key.into()))
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        self.child(Segment::Index(index))
    }

    /// This path extended by one segment.
    pub fn child(&self, segment: Segment) -> Self {
        let mut segments = Vec::with_capacity(self.segments.len() + 1);
        segments.extend_from_slice(&self.segments);
        segments.push(segment);
        Self { segments }
    }

    /// The enclosing path, or `None` at the root.
    pub fn parent(&self) -> Option<Self> {
        let (_, init) = self.segments.split_last()?;
        Some(Self {
            segments: init.to_vec(),
        })
    }

    /// Whether this is the document root.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The segments from the root down.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The last segment, if any.
    pub fn last(&self) -> Option<&Segment> {
        self.segments.last()
    }

    /// Whether `self` equals `other` or lies inside it.
    pub fn starts_with(&self, other: &YamlPath) -> bool {
        self.segments.starts_with(&other.segments)
    }

    /// The longest prefix of this path whose last step is a mapping key, i.e. the entry
    /// that can be removed from its parent mapping without shifting any sibling's path.
    pub fn innermost_key_entry(&self) -> Option<Self> {
        let end = self
            .segments
            .iter()
            .rposition(|s| matches!(s, Segment::Key(_)))?;
        Some(Self {
            segments: self.segments[..=end].to_vec(),
        })
    }

    /// Converts the path serde_path_to_error reports for a failed deserialization.
    pub fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let segments = path
            .iter()
            .filter_map(|segment| match segment {
                S::Seq { index } => Some(Segment::Index(*index)),
                S::Map { key } => Some(Segment::Key(key.clone())),
                S::Enum { variant } => Some(Segment::Key(variant.clone())),
                S::Unknown => None,
            })
            .collect();
        Self { segments }
    }
}

/// A key prints bare when it cannot be confused with path punctuation.
fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '/' | '$' | '@'))
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_plain_key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => write!(f, "[{key:?}]")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_joins_keys_with_dots_and_indexes_with_brackets() {
        let path = YamlPath::root()
            .key("rules")
            .index(2)
            .key("steps")
            .index(0)
            .key("with")
            .key("limit");
        assert_eq!(path.to_string(), "rules[2].steps[0].with.limit");
        assert_eq!(YamlPath::root().to_string(), "");
    }

    #[test]
    fn keys_with_punctuation_are_quoted() {
        let path = YamlPath::root().key("notifiers").key("a.b");
        assert_eq!(path.to_string(), r#"notifiers["a.b"]"#);
    }

    #[test]
    fn innermost_key_entry_drops_trailing_indexes() {
        let path = YamlPath::root().key("codegen").key("org_ids").index(1);
        assert_eq!(
            path.innermost_key_entry(),
            Some(YamlPath::root().key("codegen").key("org_ids"))
        );
        assert_eq!(YamlPath::root().index(0).innermost_key_entry(), None);
    }
}
