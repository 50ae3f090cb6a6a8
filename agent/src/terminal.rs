//! Questions on the terminal: the PIN, without echo.

use std::io::{BufRead, IsTerminal};

/// Reads a secret: on a terminal without echo (the prompt on the terminal); without one, one
/// line of standard input, so that `echo 123456 | card-relay -p <url>` works. `None` at the
/// end of the input or when the terminal cannot be read.
pub fn ask_secret(prompt: &str) -> Option<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).ok();
    }
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}
