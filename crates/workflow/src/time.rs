//! Wall-clock helpers: Unix time and RFC 3339 timestamps without a date-time dependency.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch (zero if the clock is before 1970).
pub fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Formats a time as RFC 3339 in UTC with millisecond precision, e.g. `2026-11-24T22:52:21.123Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let d = since_epoch(t);
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parses an RFC 3339 date-time (`2026-11-24T22:52:21.123Z`, `…+02:00`; `T`/`Z` in either case,
/// any number of fraction digits, kept to the nanosecond). `None` for anything else, and for
/// instants before 1970 or with a leap second (`:60`).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't') {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0u32;
    if b[at] == b'.' {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 9 {
                nanos = nanos * 10 + u32::from(b[at] - b'0');
            }
            at += 1;
        }
        let kept = at - start;
        if kept == 0 {
            return None;
        }
        nanos *= 10u32.pow(9u32.saturating_sub(kept as u32));
    }
    let offset_secs: i64 = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hours = i64::from(digits(at + 1..at + 3)?);
            let minutes = i64::from(digits(at + 4..at + 6)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'+' {
                offset
            } else {
                -offset
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = u64::try_from(local - offset_secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(utc, nanos))
}

/// (year, month, day) → days since 1970-01-01, proleptic Gregorian (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
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
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_007); // leap day 2000
        assert_eq!(rfc3339_millis(t), "2000-02-29T00:00:00.007Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_560_741);
        assert_eq!(rfc3339_millis(t), "2026-11-24T22:52:21.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(rfc3339_millis(t), "2099-12-31T23:59:59.000Z");
    }

    #[test]
    fn parses_rfc3339() {
        let at = |s: &str| parse_rfc3339(s).map(since_epoch);
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(
            at("2026-11-24T22:52:21.123Z"),
            Some(Duration::from_millis(1_795_560_741_123))
        );
        assert_eq!(
            at("2000-02-29t00:00:00.000000007z"),
            Some(Duration::new(951_782_400, 7))
        );
        // Offsets move the instant; more than nine fraction digits are cut to nanoseconds.
        assert_eq!(at("2026-11-25T00:52:21+02:00"), at("2026-11-24T22:52:21Z"));
        assert_eq!(
            at("2026-11-24T20:52:21.5-02:00"),
            Some(Duration::from_millis(1_795_560_741_500))
        );
        assert_eq!(
            at("2026-11-24T22:52:21.1234567891Z"),
            Some(Duration::new(1_795_560_741, 123_456_789))
        );
        for bad in [
            "",
            "2026-11-24",
            "2026-11-24 22:52:21Z",
            "2026-11-24T22:52:21",
            "2026-11-24T22:52:21.Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T23:59:60Z",
            "2026-11-24T22:52:21+2:00",
            "2026-11-24T22:52:21+24:00",
            "2026-11-24T22:52:21Zjunk",
            "1969-12-31T23:59:59Z",
            "1970-01-01T01:00:00+02:00",
            "２026-11-24T22:52:21Z",
            "yesterday at noon, give or take",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn formatting_then_parsing_is_the_identity_to_the_millisecond(millis in 0u64..=253_402_300_799_999) {
            let t = UNIX_EPOCH + Duration::from_millis(millis);
            proptest::prop_assert_eq!(parse_rfc3339(&rfc3339_millis(t)), Some(t));
        }

        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = parse_rfc3339(&text);
        }
    }
}
