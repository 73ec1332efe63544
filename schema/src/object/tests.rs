use std::path::PathBuf;

use crate::manifest;

/// Every example object survives `to_json` and back unchanged: the agent persists objects this
/// way and must restore exactly what was applied.
#[test]
fn json_round_trips_every_example() {
    let mut dirs = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")];
    let mut paths = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read examples") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                paths.push(path);
            }
        }
    }
    let objects: Vec<_> = manifest::load_paths(&paths)
        .into_iter()
        .map(|r| r.expect("examples parse"))
        .collect();
    assert!(
        objects.len() > 20,
        "found {} example objects",
        objects.len()
    );
    for object in objects {
        let json = object.to_json();
        let back: Vec<_> = manifest::parse_str("json", &json)
            .into_iter()
            .map(|r| r.expect("json parses"))
            .collect();
        assert_eq!(back, vec![object], "{json}");
    }
}
