//! The cases of this directory as the tests read them: `cmd/tests/netpol.rs` holds `myelin
//! policy matrix` to them, `integration/tests/it/netpol_probe.rs` holds `myelin probe matrix`
//! (real traffic) to them. Both include this file with `#[path]`.

use std::fs;
use std::path::{Path, PathBuf};

/// Relative to the workspace root.
pub(crate) const CASES: &str = "cmd/tests/netpol";
pub(crate) const CLUSTER: &str = "cmd/tests/netpol/cluster";

/// One case directory and what its `case.txt` says.
pub(crate) struct Case {
    /// Relative to the workspace root, as passed to `--manifests`.
    pub(crate) dir: String,
    /// The upstream `ginkgo.It` name.
    pub(crate) it: String,
    pub(crate) probes: Vec<String>,
    /// `expected.txt`: the `policy matrix` table output.
    pub(crate) expected: String,
}

impl Case {
    pub(crate) fn path(&self, root: &Path) -> PathBuf {
        root.join(&self.dir)
    }
}

/// Every case below `root` (the workspace root), sorted by directory name.
pub(crate) fn cases(root: &Path) -> Vec<Case> {
    let mut dirs: Vec<_> = fs::read_dir(root.join(CASES))
        .expect("read the cases directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir() && !p.ends_with("cluster"))
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("utf-8 case name");
            let case_txt = fs::read_to_string(path.join("case.txt"))
                .unwrap_or_else(|e| panic!("{name}/case.txt: {e}"));
            let mut lines = case_txt.lines();
            let it = lines.next().unwrap_or_default().to_owned();
            let probes = lines
                .find_map(|l| l.strip_prefix("probes: "))
                .unwrap_or_else(|| panic!("{name}/case.txt has no `probes:` line"))
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let expected = fs::read_to_string(path.join("expected.txt"))
                .unwrap_or_else(|e| panic!("{name}/expected.txt: {e}"));
            Case {
                dir: format!("{CASES}/{name}"),
                it,
                probes,
                expected,
            }
        })
        .collect()
}
