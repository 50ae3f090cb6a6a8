//! Who may use the card through the daemon: the servers file (the OCF client's
//! `.card-update-servers`) and the origins file of the pages allowed to call the page API,
//! in the same syntax. One entry a line: `scheme://host[:port]` (the whole origin) or a
//! full URL (that URL and the URLs below it; the origins file uses the origin only); `#`
//! starts a comment; a line that is not a URL approves nothing. Entries not listed are asked
//! about on the daemon's terminal (once / always; "always" appends the origin), and refused
//! without a terminal.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use card_relay::driver::ErrorCode;

use crate::http::Target;
use crate::CliError;

/// `~/.card-update-servers`.
pub fn default_servers_file() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(PathBuf::new, PathBuf::from);
    home.join(".card-update-servers")
}

/// `.card-relay-origins` beside the servers file.
pub fn default_origins_file(servers: &Path) -> PathBuf {
    servers
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(".card-relay-origins")
}

/// The entries of `file`; an absent file is an empty list.
pub fn read(file: &Path) -> Result<Vec<Target>, CliError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(CliError::new(
                ErrorCode::NotApproved.as_str(),
                format!("cannot read {}: {e}", file.display()),
            ))
        }
    };
    Ok(text
        .lines()
        .filter_map(|raw| {
            let line = raw.split('#').next().unwrap_or("").trim();
            Target::parse(line).ok()
        })
        .collect())
}

/// Whether `entry` approves `url`: the same origin and, for an entry with a path, that URL
/// or one below it (a `?query` entry only itself).
pub fn approves(entry: &Target, url: &Target) -> bool {
    if entry.origin() != url.origin() {
        return false;
    }
    if entry.path == "/" || entry.path == url.path {
        return true;
    }
    if entry.path.contains('?') {
        return false;
    }
    let base = if entry.path.ends_with('/') {
        entry.path.clone()
    } else {
        format!("{}/", entry.path)
    };
    url.path.starts_with(&base)
}

/// Appends `origin` to `file` (created with mode 0600).
fn append(file: &Path, origin: &str) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(file)
        .and_then(|mut f| writeln!(f, "{origin}"))
        .map_err(|e| {
            CliError::new(
                ErrorCode::Internal.as_str(),
                format!("cannot write {}: {e}", file.display()),
            )
        })
}

/// Whether there is a user at a terminal to ask.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// The user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Once,
    Always,
    No,
}

/// Asks `question` on the terminal (on a blocking thread): `o`/`once`, `a`/`always`, else no.
pub async fn ask(question: String) -> Answer {
    let line = tokio::task::spawn_blocking(move || {
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "{question}");
        let _ = stderr.flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        line
    })
    .await
    .unwrap_or_default();
    match line.trim().to_lowercase().as_str() {
        "o" | "once" => Answer::Once,
        "a" | "always" => Answer::Always,
        _ => Answer::No,
    }
}

/// Approves `url` by the file or the user; `refused` is the code of a refusal.
/// `what` names the entry in the question ("the server …", "the page …").
pub async fn approve(
    file: &Path,
    url: &Target,
    question: String,
    refused: ErrorCode,
) -> Result<(), CliError> {
    if read(file)?.iter().any(|entry| approves(entry, url)) {
        return Ok(());
    }
    let shown = url.origin();
    if !interactive() {
        return Err(CliError::new(
            refused.as_str(),
            format!(
                "{shown} is not in {} and there is no terminal to ask",
                file.display()
            ),
        )
        .with_hint(refused.hint()));
    }
    match ask(question).await {
        Answer::Once => Ok(()),
        Answer::Always => append(file, &shown),
        Answer::No => Err(
            CliError::new(refused.as_str(), format!("{shown} was not approved"))
                .with_hint(refused.hint()),
        ),
    }
}

/// Whether `file` lists `url` (no question asked).
pub fn listed(file: &Path, url: &Target) -> bool {
    read(file).is_ok_and(|entries| entries.iter().any(|entry| approves(entry, url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn entries_approve_their_origin_or_their_path_and_below() {
        let origin = t("https://card.example");
        assert!(approves(&origin, &t("https://card.example/rt/x?y=1")));
        assert!(!approves(&origin, &t("https://card.example:8443/rt/x")));
        assert!(!approves(&origin, &t("http://card.example/rt/x")));
        let path = t("https://card.example/rt");
        assert!(approves(&path, &t("https://card.example/rt")));
        assert!(approves(&path, &t("https://card.example/rt/test")));
        assert!(!approves(&path, &t("https://card.example/rtx")));
        let query = t("https://card.example/rt?a=1");
        assert!(approves(&query, &t("https://card.example/rt?a=1")));
        assert!(!approves(&query, &t("https://card.example/rt?a=1/x")));
    }

    #[test]
    fn the_file_has_comments_and_ignores_what_is_not_a_url() {
        let dir = std::env::temp_dir().join(format!("card-relay-approval-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("origins");
        std::fs::write(
            &file,
            "# pages\nhttp://127.0.0.1:8080 # the demo\nnot a url\n",
        )
        .unwrap();
        assert!(listed(&file, &t("http://127.0.0.1:8080")));
        assert!(!listed(&file, &t("http://127.0.0.1:8081")));
        assert!(!listed(&dir.join("absent"), &t("http://127.0.0.1:8080")));
        append(&file, "https://b.example").unwrap();
        assert!(listed(&file, &t("https://b.example")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
