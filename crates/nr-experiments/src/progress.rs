//! Progress bars of the long stages (hidden states, generation, training, lexicon fitting).

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar on stderr for `n` items with rate and ETA, hidden when `show` is false.
pub fn progress(n: usize, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
