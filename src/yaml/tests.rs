//! Unit tests of the YAML loader: positions, limits, and error collection.

use std::path::Path;

use serde::Deserialize;

use super::diagnostic::edit_distance;
use super::*;

fn parse(text: &str) -> Result<Document, Vec<Diagnostic>> {
    Document::parse(Path::new("t.yaml"), text, &Limits::default())
}

fn messages(diagnostics: &[Diagnostic]) -> Vec<String> {
    diagnostics.iter().map(ToString::to_string).collect()
}

const RULES: &str = "\
rules:
  - name: a
  - name: b
  - name: c
    steps:
      - with:
          limit: 50
          flow: { x: 1, y: [a, b] }
";

#[test]
fn source_map_locates_keys_and_values_by_path() {
    let doc = parse(RULES).unwrap();
    let map = doc.source_map();
    let limit = YamlPath::root()
        .key("rules")
        .index(2)
        .key("steps")
        .index(0)
        .key("with")
        .key("limit");
    let entry = map.entry(&limit).unwrap();
    assert_eq!(entry.key, Some(Location { line: 7, col: 11 }));
    assert_eq!(entry.value, Location { line: 7, col: 18 });
    let y1 = limit.parent().unwrap().key("flow").key("y").index(1);
    assert_eq!(map.locate(&y1), Some(Location { line: 8, col: 32 }));
    // Sequence items have no key: locate_key points at the value.
    let rule = YamlPath::root().key("rules").index(1);
    assert_eq!(map.locate_key(&rule), Some(Location { line: 3, col: 5 }));
}

#[test]
fn locate_falls_back_to_the_nearest_existing_ancestor_key() {
    let doc = parse(RULES).unwrap();
    let missing = YamlPath::root()
        .key("rules")
        .index(2)
        .key("steps")
        .index(0)
        .key("id");
    let with_ = YamlPath::root().key("rules").index(2).key("steps").index(0);
    assert_eq!(
        doc.source_map().locate(&missing),
        doc.source_map().locate_key(&with_)
    );
    // Everything falls back to the root at worst.
    assert_eq!(
        doc.source_map().locate(&YamlPath::root().key("nope")),
        Some(Location::START)
    );
}

#[test]
fn paths_through_an_alias_fall_back_to_the_alias_itself() {
    let text = "base: &b\n  x: 1\ncopy: *b\n";
    let (value, map) =
        load::<serde_yaml::Value>(Path::new("t.yaml"), text, &Limits::default()).unwrap();
    assert_eq!(value["copy"]["x"], serde_yaml::Value::from(1));
    let copy = YamlPath::root().key("copy");
    assert_eq!(map.locate(&copy), Some(Location { line: 3, col: 7 }));
    assert_eq!(
        map.locate(&copy.key("x")),
        Some(Location { line: 3, col: 1 })
    );
    assert_eq!(
        map.locate(&YamlPath::root().key("base").key("x")),
        Some(Location { line: 2, col: 6 })
    );
}

#[test]
fn complex_keys_do_not_shift_the_paths_after_them() {
    let doc = parse("? [a, b]\n: 1\nafter: 2\n").unwrap();
    let after = YamlPath::root().key("after");
    assert_eq!(
        doc.source_map().locate(&after),
        Some(Location { line: 3, col: 8 })
    );
}

#[test]
fn alias_uses_over_the_limit_are_rejected_at_the_offending_alias() {
    let mut text = String::from("base: &b 1\nlist:\n");
    for _ in 0..65 {
        text.push_str("  - *b\n");
    }
    let errors = parse(&text).unwrap_err();
    assert_eq!(
        messages(&errors),
        [
            "t.yaml:67:5: list: too many aliases: more than 64 in one document \
          (hint: aliases are limited to stop alias bombs; write the values out)"
        ]
    );
}

#[test]
fn alias_bomb_under_the_alias_count_is_stopped_by_its_expanded_size() {
    // 21 levels of three aliases each: 63 alias uses, 3^21 values once expanded.
    let mut text = String::from("l0: &l0 [x, x, x]\n");
    for level in 1..=21 {
        let prev = level - 1;
        text.push_str(&format!(
            "l{level}: &l{level} [*l{prev}, *l{prev}, *l{prev}]\n"
        ));
    }
    let errors = parse(&text).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .message
            .starts_with("document expands to more than 1000000 values"),
        "{}",
        errors[0]
    );
}

#[test]
fn oversized_text_is_rejected_before_parsing() {
    let limits = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    let errors = Document::parse(Path::new("big.yaml"), "a: [1, 2, 3, 4]", &limits).unwrap_err();
    assert_eq!(
        messages(&errors),
        ["big.yaml:1:1: file is 15 bytes, over the limit of 10 bytes"]
    );
}

#[test]
fn syntax_errors_keep_serde_yaml_position_and_wording() {
    let errors = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
    let serde_err =
        serde_yaml::from_str::<serde_yaml::Value>("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
    let l = serde_err.location().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].col), (l.line(), l.column()));
    // The position moves to the front; serde_yaml's context stays in the message.
    assert_eq!(
        errors[0].message,
        "did not find expected ',' or ']', while parsing a flow sequence at line 2 column 4"
    );
    assert_eq!(errors[0].path, None);
}

#[test]
fn duplicate_keys_and_second_documents_are_errors() {
    let errors = parse("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
    assert_eq!(
        messages(&errors),
        ["t.yaml:4:3: b.c: duplicate key `c` (hint: it is first set on line 3)"]
    );
    let errors = parse("a: 1\n---\nb: 2\n").unwrap_err();
    assert_eq!(errors[0].line, 2);
    assert!(errors[0].message.contains("second one"));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields exist to be deserialized
struct Outer {
    inner: Option<Inner>,
    list: Option<Vec<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields exist to be deserialized
struct Inner {
    interval: Option<DurationStr>,
    size: Option<ByteSize>,
    name: String,
}

#[test]
fn deserialization_reports_every_bad_field_with_its_position() {
    let text = "inner:\n  intervl: 5s\n  interval: 15\n  name: x\nlist: [1, two]\n";
    let errors = load::<Outer>(Path::new("t.yaml"), text, &Limits::default()).unwrap_err();
    assert_eq!(
        messages(&errors),
        [
            "t.yaml:2:3: inner.intervl: unknown field `intervl` (hint: did you mean `interval`?)",
            "t.yaml:3:13: inner.interval: invalid duration \"15\": a number needs a unit (hint: add a unit, e.g. 15s)",
            "t.yaml:5:11: list[1]: invalid type: string \"two\", expected u32",
        ]
    );
}

#[test]
fn a_missing_field_points_at_its_parent_key_and_is_not_repeated_after_removal() {
    let errors = load::<Outer>(
        Path::new("t.yaml"),
        "inner:\n  size: 1\n",
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        messages(&errors),
        ["t.yaml:1:1: inner: missing field `name`"]
    );
    let errors = load::<Outer>(
        Path::new("t.yaml"),
        "inner:\n  name: [1]\n",
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(
        messages(&errors),
        ["t.yaml:2:9: inner.name: invalid type: sequence, expected a string"]
    );
}

#[test]
fn partial_deserialization_returns_what_was_left() {
    let doc = parse("inner:\n  name: x\n  size: lots\nlist: [1]\n").unwrap();
    let partial = doc.deserialize_value::<Outer>(doc.root().clone(), &YamlPath::root());
    let value = partial.value.unwrap();
    assert_eq!(value.list, Some(vec![1]));
    assert_eq!(
        partial.rejected,
        [YamlPath::root().key("inner").key("size")]
    );
    assert_eq!(partial.diagnostics.len(), 1);
}

#[test]
fn edit_distance_counts_single_character_edits() {
    assert_eq!(edit_distance("token_evn", "token_env"), 2);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
}

#[test]
fn unknown_and_self_referencing_anchors_are_errors() {
    let errors = parse("x: *nope\n").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 1, "{}", errors[0]);
    let errors = parse("x: &a [1, *a]\n").unwrap_err();
    assert_eq!(
        messages(&errors),
        ["t.yaml:1:11: x: alias refers to a node that contains it"]
    );
}
