//! Progress on stderr for commands that can take more than a second, drawn only when stderr is a
//! terminal, so pipes, logs and tests see nothing. Every command gets its bars from here.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Whether progress is drawn at all: stderr is a terminal.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
}

fn target() -> ProgressDrawTarget {
    if enabled() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A spinner for a phase whose length is not known in advance (a search pass, one baseline),
/// with the elapsed time; replace the message with [`ProgressBar::set_message`] per phase.
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    let b = ProgressBar::with_draw_target(None, target()).with_message(msg.into());
    b.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    if enabled() {
        b.enable_steady_tick(Duration::from_millis(120));
    }
    b
}

/// A bar of `len` steps headed `what` (fit's epochs), with the elapsed and expected time.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(len), target());
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{percent}}% ({{elapsed}}, at most {{duration}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars_are_hidden_when_stderr_is_not_a_terminal() {
        // Under `cargo test` stderr is captured or a pipe, as it is in CI.
        if !super::enabled() {
            assert!(super::spinner("x").is_hidden());
            assert!(super::bar(3, "x").is_hidden());
        }
    }
}
