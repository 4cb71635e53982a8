//! Finding rule files: every `.yaml`/`.yml` under the configured paths, searched recursively in
//! name order. Hidden entries are skipped: editors' swap files, and the `..data` directories a
//! Kubernetes ConfigMap mount keeps beside its symlinks, would otherwise load rules twice.

use std::path::{Path, PathBuf};

use crate::yaml::Diagnostic;

/// How deep directories are searched: deep enough for any layout, bounded against link loops.
const MAX_DEPTH: usize = 16;

/// The files found, and the paths that could not be read.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub files: Vec<PathBuf>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Whether a file name is a rule file.
pub(crate) fn is_rule_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    yaml && !hidden
}

/// Every rule file under `paths`; a path given explicitly is read whatever its name.
pub(crate) fn find(paths: &[PathBuf]) -> Found {
    let mut found = Found::default();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let before = found.files.len();
                walk(path, 0, &mut found);
                if found.files.len() == before {
                    let warning =
                        Diagnostic::file_error(path, "no rule files (*.yaml, *.yml) here");
                    found.diagnostics.push(warning.into_warning());
                }
            }
            Ok(_) => found.files.push(path.clone()),
            Err(err) => found
                .diagnostics
                .push(Diagnostic::file_error(path, format!("cannot read: {err}"))),
        }
    }
    found.files.dedup();
    found
}

fn walk(dir: &Path, depth: usize, found: &mut Found) {
    if depth > MAX_DEPTH {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            let error = Diagnostic::file_error(dir, format!("cannot read directory: {err}"));
            return found.diagnostics.push(error);
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, depth + 1, found);
        } else if is_rule_file(&path) {
            found.files.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_files_are_found_recursively_and_hidden_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("team/..data")).unwrap();
        for name in [
            "b.yaml",
            "a.yml",
            "team/c.yaml",
            "team/..data/c.yaml",
            ".swap.yaml",
            "notes.txt",
        ] {
            std::fs::write(root.join(name), "rules: []").unwrap();
        }
        let found = find(&[root.to_path_buf()]);
        let names: Vec<_> = found
            .files
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a.yml", "b.yaml", "team/c.yaml"]);
        assert!(found.diagnostics.is_empty());
        let missing = find(&[root.join("nope")]);
        assert!(missing.diagnostics[0].message.starts_with("cannot read"));
    }
}
