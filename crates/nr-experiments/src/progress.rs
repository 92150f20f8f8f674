//! Progress of the long stages (hidden states, generation, training, lexicon fitting): a bar on a
//! terminal, a periodic log line with rate and ETA elsewhere (CI logs, redirected runs).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Seconds between log lines when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// The progress of `len` items of one stage.
pub struct Progress {
    bar: ProgressBar,
    what: String,
    len: u64,
    /// Log lines instead of a bar (stderr is not a terminal).
    log: Option<Mutex<LogState>>,
}

struct LogState {
    done: u64,
    start: Instant,
    last: Instant,
    message: String,
}

/// A progress report for `n` items, silent when `show` is false.
pub fn progress(n: usize, what: &str, show: bool) -> Progress {
    let len = n as u64;
    let terminal = std::io::stderr().is_terminal();
    let bar = if show && terminal {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap()
                .progress_chars("=> "),
        );
        bar.set_message(what.to_string());
        bar
    } else {
        ProgressBar::hidden()
    };
    let now = Instant::now();
    Progress {
        bar,
        what: what.to_string(),
        len,
        log: (show && !terminal).then(|| {
            Mutex::new(LogState {
                done: 0,
                start: now,
                last: now,
                message: String::new(),
            })
        }),
    }
}

impl Progress {
    /// `n` more items done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(log) = &self.log {
            let mut s = log.lock().unwrap_or_else(|e| e.into_inner());
            s.done += n;
            if s.last.elapsed() >= LOG_EVERY && s.done < self.len {
                s.last = Instant::now();
                tracing::info!(
                    "{}",
                    line(&self.what, s.done, self.len, s.start, &s.message)
                );
            }
        }
    }

    /// Extra text shown with the bar (and the log line), such as the current losses.
    pub fn set_message(&self, message: String) {
        if let Some(log) = &self.log {
            log.lock().unwrap_or_else(|e| e.into_inner()).message = message.clone();
        }
        self.bar.set_message(message);
    }

    /// Removes the bar (or logs the stage's total time).
    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
        if let Some(log) = &self.log {
            let s = log.lock().unwrap_or_else(|e| e.into_inner());
            if s.start.elapsed() >= LOG_EVERY {
                tracing::info!(
                    "{}: {} done in {:.0} s",
                    self.what,
                    s.done,
                    s.start.elapsed().as_secs_f64()
                );
            }
        }
    }
}

/// `what: done/len, rate/s, eta Ns [message]`.
fn line(what: &str, done: u64, len: u64, start: Instant, message: &str) -> String {
    let secs = start.elapsed().as_secs_f64();
    let rate = done as f64 / secs.max(1e-9);
    let eta = (len.saturating_sub(done)) as f64 / rate.max(1e-9);
    let mut text = format!("{what}: {done}/{len}, {rate:.1}/s, eta {eta:.0} s");
    if !message.is_empty() {
        text.push_str(&format!(" ({message})"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_line_gives_rate_and_eta() {
        let start = Instant::now() - Duration::from_secs(10);
        let text = line("rewrites", 50, 250, start, "");
        // 50 in ~10 s: 5.0/s, 200 left: eta 40 s.
        assert!(
            text.starts_with("rewrites: 50/250, 5.0/s, eta 40 s"),
            "{text}"
        );
        assert!(line("training", 1, 2, start, "loss 0.5").ends_with("(loss 0.5)"));
    }
}
