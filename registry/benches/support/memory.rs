//! Process memory for the registry's benches (included with `#[path]`).

/// This process's resident memory now (heap and other anonymous pages,
/// file pages) and at its peak (Linux).
pub fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or_else(|| "?".into(), |kb| format!("{} MB", kb / 1024))
    };
    format!(
        "RSS {} (anonymous {}, file {}), peak {}",
        field("VmRSS:"),
        field("RssAnon:"),
        field("RssFile:"),
        field("VmHWM:")
    )
}
