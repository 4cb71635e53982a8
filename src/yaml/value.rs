//! Navigating and pruning a `serde_yaml::Value` by [`YamlPath`].

use serde_yaml::Value;

use super::{Segment, YamlPath};

/// A mapping key as text, the way the source map and serde_path_to_error spell it.
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn child<'v>(node: &'v Value, segment: &Segment) -> Option<&'v Value> {
    match (node, segment) {
        (Value::Tagged(tagged), _) => child(&tagged.value, segment),
        (Value::Mapping(map), Segment::Key(key)) => map
            .iter()
            .find(|(k, _)| key_text(k).as_deref() == Some(key.as_str()))
            .map(|(_, v)| v),
        (Value::Sequence(seq), Segment::Index(i)) => seq.get(*i),
        _ => None,
    }
}

fn child_mut<'v>(node: &'v mut Value, segment: &Segment) -> Option<&'v mut Value> {
    match (node, segment) {
        (Value::Tagged(tagged), _) => child_mut(&mut tagged.value, segment),
        (Value::Mapping(map), Segment::Key(key)) => map
            .iter_mut()
            .find(|(k, _)| key_text(k).as_deref() == Some(key.as_str()))
            .map(|(_, v)| v),
        (Value::Sequence(seq), Segment::Index(i)) => seq.get_mut(*i),
        _ => None,
    }
}

/// Removes the mapping entry at `entry` (whose last segment is a key); whether it was there.
pub(super) fn remove(root: &mut Value, entry: &YamlPath) -> bool {
    let Some((Segment::Key(key), parents)) = entry.segments().split_last() else {
        return false;
    };
    let parent = parents
        .iter()
        .try_fold(root, |node, segment| child_mut(node, segment));
    let mut parent = parent;
    while let Some(Value::Tagged(tagged)) = parent {
        parent = Some(&mut tagged.value);
    }
    let Some(Value::Mapping(map)) = parent else {
        return false;
    };
    let before = map.len();
    map.retain(|k, _| key_text(k).as_deref() != Some(key.as_str()));
    map.len() != before
}
