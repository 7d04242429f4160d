//! Unix seconds as the dates and times the wallet shows (UTC; the wallet
//! stores Unix seconds).

/// `2025-07-15` for a Unix time in seconds.
pub fn date(t: i64) -> String {
    let (y, m, d) = civil(t.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2025-07-15 09:30 UTC` for a Unix time in seconds.
pub fn date_time(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02} UTC",
        date(t),
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is 1..=31 and month 1..=12 by construction.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_around_epoch_leap_days_and_far_future() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date_time(1_780_000_000), "2026-05-28 20:26 UTC");
        assert_eq!(date(4_102_444_800), "2100-01-01");
    }
}
