//! The config corpus: every file `fixtures/config/<kind>/<case>.{json,md}` is validated as
//! that kind, and its findings, rendered as a person sees them, must equal
//! `<case>.expected` exactly (an empty file: valid). The directory names are the kinds'
//! serialized names (`project_settings`, `skill_md`, …).
//!
//! The check context's project is `fixtures/config` itself (hook commands under
//! `$CLAUDE_PROJECT_DIR` resolve to `fixtures/config/hooks/`), its home
//! `fixtures/config/home`.
//!
//! `UPDATE_EXPECT=1 cargo test -p ctxopt-core --test corpus` rewrites every `.expected` file
//! from the current output; review the diff before committing it.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use ctxopt::config::{CheckContext, Kind, validate_bytes};
use ctxopt::diagnostic::Diagnostic;

const KINDS: [Kind; 10] = [
    Kind::ProjectSettings,
    Kind::LocalSettings,
    Kind::UserSettings,
    Kind::ManagedSettings,
    Kind::ClaudeJson,
    Kind::McpJson,
    Kind::Canary,
    Kind::SkillJson,
    Kind::SkillMd,
    Kind::Policy,
];

/// Fewer cases than this means fixtures went missing.
const MIN_CASES: usize = 40;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/config")
}

/// The kind's serialized name, which is its directory's name.
fn dir_name(kind: Kind) -> Option<String> {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn sorted(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<PathBuf>>>()?;
    paths.sort();
    Ok(paths)
}

/// A line diff (longest common subsequence): `-` expected only, `+` actual only.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0_usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, "    {}", a[i]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "  - {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "  + {}", b[j]);
            j += 1;
        }
    }
    out
}

#[test]
fn corpus_findings_match_expected_files() {
    let root = root();
    let ctx = CheckContext {
        project: root.clone(),
        home: root.join("home"),
    };
    let update = std::env::var_os("UPDATE_EXPECT").is_some_and(|v| !v.is_empty() && v != "0");
    let mut cases = 0;
    let mut failures = Vec::new();
    for kind in KINDS {
        let dir = dir_name(kind).unwrap();
        let paths = sorted(&root.join(&dir));
        for path in paths.unwrap_or_else(|err| panic!("{dir}: {err}")) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            let expected_path = path.with_extension("expected");
            if ext == "expected" {
                let input_exists = ["json", "md"]
                    .iter()
                    .any(|e| path.with_extension(e).exists());
                if !input_exists {
                    failures.push(format!("{dir}/{name}: no case file beside it"));
                }
                continue;
            }
            if ext != "json" && ext != "md" {
                failures.push(format!("{dir}/{name}: not a .json or .md case"));
                continue;
            }
            cases += 1;
            let display = format!("{dir}/{name}");
            let bytes = fs::read(&path).unwrap();
            let findings = validate_bytes(kind, &display, &bytes, &ctx);
            let rendered: Vec<String> = findings.iter().map(Diagnostic::render).collect();
            let mut actual = rendered.join("\n");
            if !actual.is_empty() {
                actual.push('\n');
            }
            if update {
                fs::write(&expected_path, &actual).unwrap();
                continue;
            }
            match fs::read_to_string(&expected_path) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => failures.push(format!(
                    "{display}: findings differ (- expected, + actual):\n{}",
                    diff(&expected, &actual)
                )),
                Err(_) => failures.push(format!(
                    "{display}: no {} (run with UPDATE_EXPECT=1); actual:\n{}",
                    expected_path.file_name().unwrap().to_string_lossy(),
                    if actual.is_empty() {
                        "(no findings)\n"
                    } else {
                        &actual
                    }
                )),
            }
        }
    }
    assert!(
        cases >= MIN_CASES,
        "only {cases} corpus cases under {}",
        root.display()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} corpus cases failed (UPDATE_EXPECT=1 rewrites the .expected files):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn diff_marks_missing_and_extra_lines() {
    assert_eq!(
        diff("a\nb\nc\n", "a\nc\nd\n"),
        "    a\n  - b\n    c\n  + d\n"
    );
}
