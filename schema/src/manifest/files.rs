use std::fs;
use std::path::{Path, PathBuf};

use super::{ManifestError, parse_str};
use crate::object::Object;

/// Reads files and directories as `kubectl apply -f` does: a directory contributes its
/// `*.yaml`, `*.yml` and `*.json` files (not recursively) in name order. A file that cannot
/// be read yields a [`ManifestError::Read`] and the others are still read.
pub fn load_paths<P: AsRef<Path>>(
    paths: impl IntoIterator<Item = P>,
) -> Vec<Result<Object, ManifestError>> {
    let mut results = Vec::new();
    for path in paths {
        let path = path.as_ref();
        if path.is_dir() {
            match manifest_files(path) {
                Ok(files) => files.iter().for_each(|file| load_file(file, &mut results)),
                Err(source) => results.push(Err(ManifestError::Read {
                    path: path.to_owned(),
                    source,
                })),
            }
        } else {
            load_file(path, &mut results);
        }
    }
    results
}

fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let is_manifest = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| matches!(ext, "yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn load_file(path: &Path, results: &mut Vec<Result<Object, ManifestError>>) {
    match fs::read_to_string(path) {
        Ok(text) => results.extend(parse_str(&path.display().to_string(), &text)),
        Err(source) => results.push(Err(ManifestError::Read {
            path: path.to_owned(),
            source,
        })),
    }
}
