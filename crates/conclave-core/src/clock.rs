//! Time, from one place: the engine never reads the system clock directly.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time in whole seconds since the Unix epoch.
    fn unix(&self) -> i64 {
        unix(self.now())
    }
}

/// `t` in whole seconds since the Unix epoch (0 before it).
pub fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always says the same time, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl FixedClock {
    /// A clock fixed at `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: u64) -> Self {
        FixedClock(UNIX_EPOCH + Duration::from_secs(secs))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// A clock that stands still until it is moved, for tests that need time
/// to pass (copies going stale, say).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicU64);

impl ManualClock {
    /// A clock at `secs` seconds after the Unix epoch.
    pub fn at_unix(secs: u64) -> Self {
        ManualClock(std::sync::atomic::AtomicU64::new(secs))
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Formats a time as an RFC 5322 date in UTC, e.g. `Tue, 24 Nov 2026 10:00:00 +0000`.
pub fn rfc5322(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let wd = DAYS.get((days % 7) as usize).copied().unwrap_or("Mon");
    let mon = MONTHS
        .get((m as usize).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{wd}, {d} {mon} {y} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A time as an ISO 8601 date in UTC, e.g. `2026-12-02`.
pub fn iso_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(secs / 86_400);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a (year, month, day) civil date.
pub fn civil_from_days(days: u64) -> (i64, u32, u32) {
    // Howard Hinnant's days-to-civil algorithm, for non-negative day counts.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc5322_dates() {
        assert_eq!(rfc5322(UNIX_EPOCH), "Thu, 1 Jan 1970 00:00:00 +0000");
        // 2026-11-24 10:20:30 UTC
        let t = UNIX_EPOCH + Duration::from_secs(1_795_515_630);
        assert_eq!(rfc5322(t), "Tue, 24 Nov 2026 10:20:30 +0000");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc5322(t), "Tue, 29 Feb 2000 00:00:00 +0000");
    }
}
