//! Checks on the JavaScript layer (js/card-relay.js) that need the native side: its list of
//! vendor-class CCID readers must be exactly the corpus's, and its error codes and hints, the
//! published types' `CardRelayErrorCode` and the README's errors table must be the driver's
//! (`ErrorCode::ALL` is the one list).
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use std::path::PathBuf;

use card_relay::driver::ErrorCode;
use card_relay::sim::profile::ReaderProfile;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn js() -> String {
    read("js/card-relay.js")
}

fn driver_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

/// The text of `text` from `start` up to the first `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let begin = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} not found"));
    let len = text[begin..]
        .find(end)
        .unwrap_or_else(|| panic!("{end} not found after {start}"));
    &text[begin..begin + len]
}

#[test]
fn vendor_class_list_matches_the_reader_corpus() {
    let mut expected = BTreeSet::new();
    let mut files = 0;
    for entry in std::fs::read_dir(card_relay::sim::profile::corpus_dir()).expect("reader dumps") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("txt") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(devices) = ReaderProfile::parse_all(&text) else {
            continue;
        };
        files += 1;
        for device in devices {
            let vendor_ccid = device
                .interfaces
                .iter()
                .any(|i| i.class == 0xFF && i.class_descriptor.is_some());
            if vendor_ccid {
                expected.insert((device.vendor_id, device.product_id));
            }
        }
    }
    assert!(files >= 691, "only {files} dumps read");

    let text = js();
    let begin = text
        .find("VENDOR-CLASS-READERS-BEGIN")
        .expect("begin marker");
    let end = text.find("VENDOR-CLASS-READERS-END").expect("end marker");
    let mut listed = BTreeSet::new();
    for line in text[begin..end].lines().skip(1) {
        let line = line.trim();
        let Some(inner) = line.strip_prefix('[').and_then(|l| l.split(']').next()) else {
            continue;
        };
        let ids: Vec<u16> = inner
            .split(',')
            .map(|s| u16::from_str_radix(s.trim().trim_start_matches("0x"), 16).expect("hex id"))
            .collect();
        assert_eq!(ids.len(), 2, "{line}");
        listed.insert((ids[0], ids[1]));
    }
    assert_eq!(
        listed, expected,
        "js/card-relay.js VENDOR_CLASS_CCID_READERS"
    );
    assert_eq!(listed.len(), 24);
}

#[test]
fn js_error_codes_are_the_drivers() {
    let text = js();
    let begin = text.find("export const ERROR_CODES").expect("ERROR_CODES");
    let end = begin + text[begin..].find("]);").expect("end of ERROR_CODES");
    let listed: Vec<&str> = text[begin..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"'))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert_eq!(listed, driver_codes());
}

/// The published types name every code, in the driver's order, and no other.
#[test]
fn dts_error_code_union_is_the_drivers() {
    let text = read("js/card-relay.d.ts");
    let union = between(&text, "export type CardRelayErrorCode", ";");
    let listed: Vec<&str> = union
        .lines()
        .skip(1)
        .map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("| \"")
                .unwrap_or_else(|| panic!("not a member: {l}"));
            l.strip_suffix('"')
                .unwrap_or_else(|| panic!("not a member: {l}"))
        })
        .collect();
    assert_eq!(
        listed,
        driver_codes(),
        "js/card-relay.d.ts CardRelayErrorCode"
    );
}

/// The README's errors table has one row for each code (a row may name several), and names
/// no code the driver does not have.
#[test]
fn readme_errors_table_is_the_drivers() {
    let text = read("README.md");
    let section = between(&text, "### Errors", "\n### ");
    let mut listed = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).expect("first column");
        for code in first.split('`').skip(1).step_by(2) {
            listed.push(code);
        }
    }
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        listed.len(),
        "a code listed twice: {listed:?}"
    );
    let mut codes = driver_codes();
    codes.sort_unstable();
    assert_eq!(sorted, codes, "README.md errors table");
}

/// Hints the JavaScript layer writes itself for a code: the driver's hint for that code,
/// word for word.
#[test]
fn js_insecure_url_hint_is_the_drivers() {
    let text = js();
    let check = between(&text, "export function checkServerUrl", "\n}\n");
    let at = check.find("hint: \"").expect("the insecure-url hint") + "hint: \"".len();
    let hint = check[at..].split('"').next().expect("closing quote");
    assert!(check.contains("\"insecure-url\""));
    assert_eq!(hint, ErrorCode::InsecureUrl.hint());
}

/// The agent route makes its errors in JavaScript (no WebAssembly on that route): their hints
/// must be the driver's.
#[test]
fn js_agent_hints_are_the_drivers() {
    let text = js();
    let begin = text.find("const AGENT_HINTS").expect("AGENT_HINTS");
    let end = begin + text[begin..].find("});").expect("end of AGENT_HINTS");
    // Joins the string literals split with `" +` across lines.
    let mut joined = String::new();
    for line in text[begin..end].lines() {
        let line = line.trim();
        let line = line.strip_prefix('"').unwrap_or(line);
        let line = line.strip_suffix("\" +").unwrap_or(line);
        joined.push_str(line);
    }
    for code in [
        ErrorCode::AgentUnreachable,
        ErrorCode::AgentRefused,
        ErrorCode::AgentBusy,
    ] {
        let hint = code.hint().split_whitespace().collect::<Vec<_>>().join(" ");
        let key = format!("{}\":", code.as_str());
        let at = joined
            .find(&key)
            .unwrap_or_else(|| panic!("{key} in AGENT_HINTS"));
        let rest = joined[at + key.len()..].trim_start();
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        assert!(rest.starts_with(&hint), "{}: {rest}", code.as_str());
    }
}
