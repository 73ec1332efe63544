//! Layout rules checked as tests: crates depend only downwards, and ARCHITECTURE.md names every
//! crate.

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::fs;

    use crate::root;

    /// Which workspace crates each crate may depend on (normal dependencies).
    const ALLOWED: &[(&str, &[&str])] = &[
        ("statedb", &[]),
        ("schema", &[]),
        ("metrics", &[]),
        ("policy", &["schema"]),
        ("bpf", &["schema"]),
        ("reconcilers", &["statedb", "schema", "policy", "bpf"]),
        ("proxy", &["statedb", "schema", "policy"]),
        // observe sits above proxy: it turns the proxies' access log records into L7 flows, as
        // Hubble's parser reads Cilium's `proxy/accesslog`.
        (
            "observe",
            &[
                "statedb",
                "schema",
                "metrics",
                "policy",
                "bpf",
                "reconcilers",
                "proxy",
            ],
        ),
        ("cni", &["schema"]),
        (
            "cmd",
            &[
                "statedb",
                "schema",
                "metrics",
                "policy",
                "bpf",
                "reconcilers",
                "observe",
                "proxy",
                "cni",
            ],
        ),
        (
            "integration",
            &[
                "statedb",
                "schema",
                "metrics",
                "policy",
                "bpf",
                "reconcilers",
                "observe",
                "proxy",
                "cni",
                "cmd",
            ],
        ),
        ("xtask", &[]),
    ];

    fn members() -> Vec<String> {
        let manifest = fs::read_to_string(root().join("Cargo.toml")).expect("root Cargo.toml");
        let start = manifest.find("members").expect("members list");
        let list = &manifest[start..];
        let list = &list[list.find('[').expect("[")..=list.find(']').expect("]")];
        list.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    /// The workspace crates named in a manifest's `[dependencies]` section.
    fn internal_deps(krate: &str, members: &[String]) -> Vec<String> {
        let manifest = fs::read_to_string(root().join(krate).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{krate}/Cargo.toml: {e}"));
        let mut in_deps = false;
        let mut out = Vec::new();
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_deps = line == "[dependencies]";
                continue;
            }
            if !in_deps {
                continue;
            }
            let name = line.split(['=', ' ', '.']).next().unwrap_or("");
            if members.iter().any(|m| m == name) {
                out.push(name.to_string());
            }
        }
        out
    }

    #[test]
    fn crates_depend_only_downwards() {
        let members = members();
        let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
        for m in &members {
            let ok = allowed
                .get(m.as_str())
                .unwrap_or_else(|| panic!("crate {m} is not in tidy's dependency table"));
            for d in internal_deps(m, &members) {
                assert!(ok.contains(&d.as_str()), "{m} must not depend on {d}");
            }
        }
    }

    #[test]
    fn package_names_match_directories() {
        for m in members() {
            let manifest =
                fs::read_to_string(root().join(&m).join("Cargo.toml")).expect("manifest");
            assert!(
                manifest.contains(&format!("name = \"{m}\"")),
                "package in {m}/ must be named {m}"
            );
            assert!(
                manifest.contains("[lints]\nworkspace = true"),
                "{m} must use the workspace lints"
            );
        }
    }

    #[test]
    fn architecture_names_every_crate() {
        let arch = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
        for m in members() {
            assert!(
                arch.contains(&format!("`{m}/`")),
                "ARCHITECTURE.md must describe `{m}/`"
            );
        }
        assert!(
            arch.lines().count() <= 140,
            "ARCHITECTURE.md should stay short"
        );
    }
}
