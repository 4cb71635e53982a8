//! `SourceMap`: where every key and value of a YAML document sits, built from parser events.
//!
//! serde_yaml gives no positions for values, so one pass over saphyr-parser's spanned events
//! records the position of each node by key path. The same pass enforces the alias limits
//! before anything is deserialized, and catches duplicate keys and extra documents.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser};

use super::{Limits, Location, YamlPath};

/// Where one node sits: its key (for mapping entries) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The key of a mapping entry; `None` for sequence items and the root.
    pub key: Option<Location>,
    /// The start of the value (for a block collection, its first entry).
    pub value: Location,
}

impl Entry {
    /// The key when there is one, else the value: where to point at "this entry".
    pub fn anchor(&self) -> Location {
        self.key.unwrap_or(self.value)
    }
}

/// Positions of every node of one document, by key path.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    entries: HashMap<YamlPath, Entry>,
}

impl SourceMap {
    /// The entry at exactly this path.
    pub fn entry(&self, path: &YamlPath) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// The value at `path`; when it does not exist (a missing key, or a node reached through
    /// an alias), the key of its nearest existing ancestor.
    pub fn locate(&self, path: &YamlPath) -> Option<Location> {
        match self.entries.get(path) {
            Some(entry) => Some(entry.value),
            None => self.nearest_ancestor(path),
        }
    }

    /// The key of the entry at `path` (its value for sequence items); falls back like
    /// [`SourceMap::locate`].
    pub fn locate_key(&self, path: &YamlPath) -> Option<Location> {
        match self.entries.get(path) {
            Some(entry) => Some(entry.anchor()),
            None => self.nearest_ancestor(path),
        }
    }

    fn nearest_ancestor(&self, path: &YamlPath) -> Option<Location> {
        let mut current = path.parent();
        while let Some(path) = current {
            if let Some(entry) = self.entries.get(&path) {
                return Some(entry.anchor());
            }
            current = path.parent();
        }
        None
    }
}

/// A problem found while scanning; the caller turns it into a `Diagnostic`.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub location: Location,
    pub path: YamlPath,
    pub message: String,
    pub hint: Option<String>,
    /// The text is not valid YAML (the caller prefers serde_yaml's wording for these).
    pub syntax: bool,
}

fn location(mark: &Marker) -> Location {
    Location {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

/// Where the next node goes in its parent.
enum Slot {
    /// A mapping key (not a node of its own in the map).
    Key,
    /// A value, recorded at this path.
    Value(YamlPath),
    /// Inside a complex key: not recorded.
    Hidden,
}

struct Frame {
    path: YamlPath,
    /// Whether nodes inside are recorded (not inside a complex key).
    recorded: bool,
    /// Whether this collection is itself a mapping key.
    is_key: bool,
    anchor: usize,
    /// Expanded size of the nodes inside so far (aliases counted at their target's size).
    size: u64,
    start: Location,
    kind: Kind,
}

enum Kind {
    Map {
        /// The key waiting for its value.
        pending: Option<(String, Location)>,
        seen: HashMap<String, Location>,
    },
    Seq {
        next: usize,
    },
}

/// Scans `text`: the position index, or every problem found.
pub(crate) fn scan(text: &str, limits: &Limits) -> Result<SourceMap, Vec<Problem>> {
    let mut scanner = Scanner::new(limits);
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, span)) => {
                if let Err(problem) = scanner.event(event, location(&span.start)) {
                    scanner.problems.push(problem);
                    break;
                }
            }
            Err(err) => {
                scanner.problems.push(Problem {
                    location: location(err.marker()),
                    path: YamlPath::root(),
                    message: err.info().to_owned(),
                    hint: None,
                    syntax: true,
                });
                break;
            }
        }
    }
    if scanner.problems.is_empty() {
        Ok(scanner.map)
    } else {
        Err(scanner.problems)
    }
}

struct Scanner<'l> {
    limits: &'l Limits,
    map: SourceMap,
    stack: Vec<Frame>,
    anchors: HashMap<usize, u64>,
    aliases: usize,
    expanded: u64,
    documents: usize,
    /// Non-fatal problems (duplicate keys); fatal ones end the scan.
    problems: Vec<Problem>,
}

impl<'l> Scanner<'l> {
    fn new(limits: &'l Limits) -> Self {
        Self {
            limits,
            map: SourceMap::default(),
            stack: Vec::new(),
            anchors: HashMap::new(),
            aliases: 0,
            expanded: 0,
            documents: 0,
            problems: Vec::new(),
        }
    }

    fn event(&mut self, event: Event<'_>, at: Location) -> Result<(), Problem> {
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self
                        .problem(at, "a file holds one YAML document; this is a second one")
                        .hint("remove the `---` line, or split the file"));
                }
            }
            Event::Scalar(text, _, anchor, _) => {
                let slot = self.claim(at, Some(&text));
                self.record(&slot, at);
                self.count_expanded(1, at)?;
                self.add_leaf(1, anchor);
            }
            Event::Alias(id) => self.alias(id, at)?,
            Event::SequenceStart(anchor, _) => self.open(at, anchor, Kind::Seq { next: 0 })?,
            Event::MappingStart(anchor, _) => {
                let kind = Kind::Map {
                    pending: None,
                    seen: HashMap::new(),
                };
                self.open(at, anchor, kind)?;
            }
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }

    fn problem(&self, at: Location, message: impl Into<String>) -> Problem {
        Problem {
            location: at,
            path: self
                .stack
                .last()
                .map(|f| f.path.clone())
                .unwrap_or_default(),
            message: message.into(),
            hint: None,
            syntax: false,
        }
    }

    /// Decides where a new node goes; a scalar key is consumed here.
    fn claim(&mut self, at: Location, scalar: Option<&str>) -> Slot {
        let Some(parent) = self.stack.last_mut() else {
            return Slot::Value(YamlPath::root());
        };
        let recorded = parent.recorded;
        let slot = match &mut parent.kind {
            Kind::Seq { next } => {
                *next += 1;
                Slot::Value(parent.path.index(*next - 1))
            }
            Kind::Map { pending, seen } => match pending.take() {
                Some((key, key_at)) => {
                    let path = parent.path.key(key);
                    if recorded {
                        self.map.entries.insert(
                            path.clone(),
                            Entry {
                                key: Some(key_at),
                                value: at,
                            },
                        );
                    }
                    Slot::Value(path)
                }
                None => {
                    if let Some(key) = scalar {
                        if let Some(first) = seen.insert(key.to_owned(), at) {
                            if recorded {
                                let duplicate = Problem {
                                    location: at,
                                    path: parent.path.key(key),
                                    message: format!("duplicate key `{key}`"),
                                    hint: Some(format!("it is first set on line {}", first.line)),
                                    syntax: false,
                                };
                                self.problems.push(duplicate);
                            }
                        }
                        *pending = Some((key.to_owned(), at));
                    }
                    Slot::Key
                }
            },
        };
        match slot {
            Slot::Value(_) if !recorded => Slot::Hidden,
            slot => slot,
        }
    }

    fn record(&mut self, slot: &Slot, at: Location) {
        if let Slot::Value(path) = slot {
            // Mapping values were recorded with their key in `claim`.
            self.map.entries.entry(path.clone()).or_insert(Entry {
                key: None,
                value: at,
            });
        }
    }

    fn open(&mut self, at: Location, anchor: usize, kind: Kind) -> Result<(), Problem> {
        let slot = self.claim(at, None);
        self.record(&slot, at);
        let parent_recorded = self.stack.last().is_none_or(|f| f.recorded);
        let (path, recorded, is_key) = match slot {
            Slot::Value(path) => (path, true, false),
            Slot::Key => (YamlPath::root(), false, true),
            Slot::Hidden => (YamlPath::root(), false, false),
        };
        self.count_expanded(1, at)?;
        self.stack.push(Frame {
            path,
            recorded: recorded && parent_recorded,
            is_key,
            anchor,
            size: 0,
            start: at,
            kind,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), Problem> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let size = frame.size.saturating_add(1);
        if frame.anchor != 0 {
            self.anchors.insert(frame.anchor, size);
        }
        if let Some(parent) = self.stack.last_mut() {
            parent.size = parent.size.saturating_add(size);
            if frame.is_key {
                // A complex key: give its value a placeholder name so it is not taken as a key.
                if let Kind::Map { pending, .. } = &mut parent.kind {
                    *pending = Some(("?".to_owned(), frame.start));
                }
            }
        }
        Ok(())
    }

    /// Adds a finished leaf (scalar or alias) of expanded size `size` to its parent.
    fn add_leaf(&mut self, size: u64, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, size);
        }
        if let Some(parent) = self.stack.last_mut() {
            parent.size = parent.size.saturating_add(size);
        }
    }

    fn alias(&mut self, id: usize, at: Location) -> Result<(), Problem> {
        self.aliases += 1;
        if self.aliases > self.limits.max_aliases {
            let message = format!(
                "too many aliases: more than {} in one document",
                self.limits.max_aliases
            );
            return Err(self
                .problem(at, message)
                .hint("aliases are limited to stop alias bombs; write the values out"));
        }
        let Some(&size) = self.anchors.get(&id) else {
            return Err(self.problem(at, "alias refers to a node that contains it"));
        };
        let slot = self.claim(at, None);
        self.record(&slot, at);
        if matches!(slot, Slot::Key) {
            // An alias used as a key: its value must not be taken as another key.
            if let Some(Frame {
                kind: Kind::Map { pending, .. },
                ..
            }) = self.stack.last_mut()
            {
                *pending = Some(("?".to_owned(), at));
            }
        }
        self.count_expanded(size, at)?;
        self.add_leaf(size, 0);
        Ok(())
    }

    fn count_expanded(&mut self, size: u64, at: Location) -> Result<(), Problem> {
        self.expanded = self.expanded.saturating_add(size);
        if self.expanded > self.limits.max_nodes {
            let message = format!(
                "document expands to more than {} values",
                self.limits.max_nodes
            );
            return Err(self
                .problem(at, message)
                .hint("aliases multiply the values they repeat; write fewer or smaller ones"));
        }
        Ok(())
    }
}

impl Problem {
    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}
