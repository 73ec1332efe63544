//! The verdicts the tutorials behind `examples/` show, as `myelin policy trace` expectations
//! (`cmd/tests/traces/*.txt`).
//!
//! File format, one item per line (`#` comments and blank lines skipped):
//! - `manifests: DIR DIR...` sets the `--manifests` directories for the lines below it;
//! - `TRACE FLAGS => allowed|denied|refused [http=NNN]`: the flags go to `myelin policy trace`
//!   as they are (single or double quotes group words), with `-o json`; the JSON `verdict` must
//!   be the one named, and `http_status` must equal NNN when `http=` is given (it is not
//!   compared otherwise).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use schema::object::Object;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// One expectation: where it is written, what to run and what must come out.
struct Trace {
    at: String,
    manifests: Vec<String>,
    args: Vec<String>,
    verdict: String,
    http: Option<u64>,
}

/// Splits like a shell without expansions: whitespace separates, quotes group.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let (mut quote, mut in_word) = (None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    assert!(quote.is_none(), "unterminated quote in `{line}`");
    if in_word {
        out.push(word);
    }
    out
}

fn traces() -> Vec<Trace> {
    let dir = root().join("cmd/tests/traces");
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("read cmd/tests/traces")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(&file).expect("read a traces file");
        let mut manifests: Vec<String> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let at = format!("{name}:{}", i + 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(dirs) = line.strip_prefix("manifests:") {
                manifests = words(dirs);
                continue;
            }
            let (flags, expect) = line
                .split_once("=>")
                .unwrap_or_else(|| panic!("{at}: no `=>` in `{line}`"));
            let expect = words(expect);
            let verdict = expect.first().cloned().unwrap_or_default();
            assert!(
                ["allowed", "denied", "refused"].contains(&verdict.as_str()),
                "{at}: verdict `{verdict}`"
            );
            let http = expect.get(1).map(|h| {
                h.strip_prefix("http=")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("{at}: expected `http=NNN`, found `{h}`"))
            });
            assert!(expect.len() <= 2, "{at}: trailing words after the verdict");
            assert!(!manifests.is_empty(), "{at}: no `manifests:` line before");
            out.push(Trace {
                at,
                manifests: manifests.clone(),
                args: words(flags),
                verdict,
                http,
            });
        }
    }
    out
}

#[test]
fn every_tutorial_verdict_is_traced() {
    let traces = traces();
    let mut failures = String::new();
    let mut failed = 0;
    for t in &traces {
        let mut args = vec!["policy".to_owned(), "trace".to_owned()];
        for dir in &t.manifests {
            args.extend(["--manifests".to_owned(), dir.clone()]);
        }
        args.extend(t.args.iter().cloned());
        args.extend(["-o".to_owned(), "json".to_owned()]);
        let out = Command::new(env!("CARGO_BIN_EXE_myelin"))
            .args(&args)
            .current_dir(root())
            .output()
            .expect("run myelin");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got = serde_json::from_str::<serde_json::Value>(&stdout).map(|json| {
            (
                json["verdict"].as_str().unwrap_or("<none>").to_owned(),
                json["http_status"].as_u64(),
            )
        });
        let ok = match &got {
            Ok((verdict, http)) => {
                *verdict == t.verdict && t.http.is_none_or(|want| *http == Some(want))
            }
            Err(_) => false,
        };
        if !ok {
            failed += 1;
            let want = match t.http {
                Some(h) => format!("{} http={h}", t.verdict),
                None => t.verdict.clone(),
            };
            let got = match got {
                Ok((verdict, Some(h))) => format!("{verdict} http={h}"),
                Ok((verdict, None)) => verdict,
                Err(_) => format!(
                    "no JSON (exit {}): {}",
                    out.status.code().unwrap_or(-1),
                    String::from_utf8_lossy(&out.stderr).trim_end()
                ),
            };
            let _ = writeln!(
                failures,
                "{}: myelin {}\n  want {want}\n  got  {got}",
                t.at,
                args.join(" ")
            );
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} traces differ:\n{failures}",
        traces.len()
    );
}

/// Every line parses, every `manifests:` set loads and validates, and every `ns/pod` and
/// `svc:ns/name` peer exists in it: the expectations talk about the objects they load.
#[test]
fn every_trace_names_objects_that_exist() {
    let traces = traces();
    assert!(traces.len() >= 40, "only {} traces", traces.len());
    let examples: BTreeSet<&str> = traces
        .iter()
        .map(|t| t.at.split_once('.').map_or("", |(file, _)| file))
        .collect();
    assert_eq!(
        examples.into_iter().collect::<Vec<_>>(),
        ["bookinfo", "mediabot", "sleep-httpbin", "starwars"]
    );
    for t in &traces {
        let dirs: Vec<PathBuf> = t.manifests.iter().map(|d| root().join(d)).collect();
        let (mut pods, mut services) = (BTreeSet::new(), BTreeSet::new());
        for object in schema::manifest::load_paths(&dirs) {
            match object {
                Ok(object) => {
                    let problems = schema::validate::object(&object);
                    assert!(problems.is_empty(), "{}: {problems:?}", t.at);
                    match object {
                        Object::Pod(p) => {
                            pods.insert(name(&p.metadata));
                        }
                        Object::Service(s) => {
                            services.insert(name(&s.metadata));
                        }
                        _ => {}
                    }
                }
                Err(e) => panic!("{}: {e}", t.at),
            }
        }
        let flag = |f: &str| {
            t.args
                .iter()
                .position(|a| a == f)
                .and_then(|i| t.args.get(i + 1))
        };
        let from = flag("--from").unwrap_or_else(|| panic!("{}: no --from", t.at));
        assert!(
            flag("--to").is_some() != flag("--dns").is_some(),
            "{}: one of --to and --dns",
            t.at
        );
        assert!(
            flag("--to").is_none() || flag("--port").is_some(),
            "{}: --to needs --port",
            t.at
        );
        for peer in [Some(from), flag("--to")].into_iter().flatten() {
            if let Some(svc) = peer.strip_prefix("svc:") {
                assert!(services.contains(svc), "{}: no service {svc}", t.at);
            } else if peer.contains('/') && !peer.contains(':') {
                assert!(pods.contains(peer.as_str()), "{}: no pod {peer}", t.at);
            }
        }
    }
}

fn name(meta: &schema::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or("default"),
        meta.name.as_deref().unwrap_or_default()
    )
}
