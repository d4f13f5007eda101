//! Text from mail made safe to put on one line: in a header, a log line, a
//! name. A leaf: every layer uses it.

/// Removes line breaks and control characters, so that hostile header values
/// cannot inject headers.
pub fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
