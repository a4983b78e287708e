//! Times and durations written for people: UTC date-times from Unix milliseconds (no
//! time-zone database, no dependency) and short durations such as `4m 12s` or `29d 23h`.

/// `ms` since the Unix epoch as an RFC 3339 UTC date-time with milliseconds, for example
/// `2026-11-27T06:00:00.123Z`.
pub(crate) fn utc(ms: u64) -> String {
    let seconds = ms / 1_000;
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let in_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600,
        in_day % 3_600 / 60,
        in_day % 60,
        ms % 1_000
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01: Howard Hinnant's
/// `civil_from_days` ("chrono-Compatible Low-Level Date Algorithms"), exact for every
/// day a `u64` of milliseconds can name.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A duration in its two largest units: `0s`, `45s`, `4m 12s`, `6h`, `29d 23h`.
pub(crate) fn duration(ms: u64) -> String {
    let seconds = ms / 1_000;
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let Some(first) = units.iter().position(|&(size, _)| seconds >= size) else {
        return "0s".to_owned();
    };
    let (size, unit) = units[first];
    let mut out = format!("{}{unit}", seconds / size);
    if let Some(&(next_size, next_unit)) = units.get(first + 1) {
        let rest = seconds % size / next_size;
        if rest > 0 {
            out.push_str(&format!(" {rest}{next_unit}"));
        }
    }
    out
}

/// `1 part`, `2 parts`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_date_times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(utc(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(utc(1_795_754_096_789), "2026-11-27T04:34:56.789Z");
        // The largest time a window distinguishes, and the largest u64, still format.
        assert!(utc(plimsoll::MAX_TIME_MS).ends_with('Z'));
        assert!(utc(u64::MAX).ends_with('Z'));
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_previous() {
        let mut previous = civil_from_days(-1);
        for day in 0..146_097 * 4 {
            let date = civil_from_days(day);
            let (year, month, d) = previous;
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let month_len = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let expected = match (d == month_len, month == 12) {
                (false, _) => (year, month, d + 1),
                (true, false) => (year, month + 1, 1),
                (true, true) => (year + 1, 1, 1),
            };
            assert_eq!(date, expected, "the day after {previous:?}");
            previous = date;
        }
        assert_eq!(previous, (3569, 12, 31));
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(999), "0s");
        assert_eq!(duration(45_000), "45s");
        assert_eq!(duration(252_000), "4m 12s");
        assert_eq!(duration(6 * 3_600_000), "6h");
        assert_eq!(duration(720 * 3_600_000 - 3_600_000), "29d 23h");
    }
}
