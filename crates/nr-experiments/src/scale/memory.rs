//! The process's memory, as the kernel counts it (Linux `/proc/self/status`).

/// Peak resident set size so far in bytes (`VmHWM`); `None` where the kernel does not say.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Resident set size now in bytes (`VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_rss_grows_when_memory_is_touched_and_never_falls_below_rss() {
        let Some(before) = super::peak_rss_bytes() else {
            return; // not Linux
        };
        let block = vec![1u8; 64 << 20];
        let after = super::peak_rss_bytes().unwrap();
        assert!(
            after >= before + (60 << 20) || before > (64 << 20),
            "{before} -> {after}"
        );
        assert!(super::rss_bytes().unwrap() <= after);
        drop(block);
    }
}
