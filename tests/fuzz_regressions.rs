//! Replays every input kept under `tests/fuzz-regressions/<target>/` through the harness of
//! that fuzz target, so a crash found by `npm run fuzz` (scripts/fuzz.sh copies it there)
//! stays fixed. The harnesses are the fuzz crate's own (`fuzz/src/lib.rs`), included here
//! so the replay runs exactly the code libFuzzer ran. Each directory also holds hand-made
//! inputs for the edge cases a fuzzer finds slowly: truncated headers, huge lengths, deep
//! nesting, long runs of time extensions.
#![cfg(not(target_arch = "wasm32"))]

#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::fs;
use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no harness named {target}"));
    let files = files_in(&corpus_root().join(target));
    assert!(!files.is_empty(), "no regression inputs for {target}");
    for file in files {
        let data = fs::read(&file).expect("readable input");
        // A panic names the input that caused it.
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} failed on {}", file.display());
    }
}

#[test]
fn ccid() {
    replay("ccid");
}

#[test]
fn descriptor() {
    replay("descriptor");
}

#[test]
fn atr() {
    replay("atr");
}

#[test]
fn t1_block() {
    replay("t1_block");
}

#[test]
fn t1_engine() {
    replay("t1_engine");
}

#[test]
fn tlv() {
    replay("tlv");
}

#[test]
fn ram_openscdp() {
    replay("ram_openscdp");
}

#[test]
fn ram_gp() {
    replay("ram_gp");
}

#[test]
fn session() {
    replay("session");
}

#[test]
fn reader() {
    replay("reader");
}

#[test]
fn json() {
    replay("json");
}

#[test]
fn seram_session() {
    replay("seram_session");
}

/// Every fuzz target has a harness, a test above and a regression directory, and every
/// regression directory belongs to a target, so no crash input is silently left unreplayed.
#[test]
fn targets_corpora_and_tests_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = |dir: &Path, strip: &str| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").file_name())
            .filter_map(|name| name.to_str().map(|n| n.trim_end_matches(strip).to_owned()))
            .collect();
        names.sort();
        names
    };
    let mut harnesses: Vec<String> = harness::TARGETS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    harnesses.sort();
    assert_eq!(names(&root.join("fuzz/fuzz_targets"), ".rs"), harnesses);
    assert_eq!(names(&corpus_root(), ""), harnesses);
    let this_file = fs::read_to_string(root.join("tests/fuzz_regressions.rs")).expect("source");
    for name in &harnesses {
        assert!(
            this_file.contains(&format!("replay(\"{name}\")")),
            "no test replays {name}"
        );
    }
}

#[test]
fn pin() {
    replay("pin");
}
