//! The two timestamp forms SigV4 meets: `x-amz-date` / `X-Amz-Date` in ISO 8601 basic format
//! (`20130524T000000Z`, UTC) and the HTTP `Date` header in IMF-fixdate
//! (`Fri, 24 May 2013 00:00:00 GMT`). Times are whole seconds since the Unix epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of `YYYYMMDDTHHMMSSZ`.
pub(crate) const AMZ_DATE_LEN_BYTES: usize = 16;
/// Earliest year accepted in a timestamp.
const YEAR_MIN: i64 = 1970;
/// Latest year accepted in a timestamp (four digits).
const YEAR_MAX: i64 = 9999;

/// Seconds since the epoch, saturating at 0 before it.
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since the epoch, now.
pub fn unix_now() -> u64 {
    unix_secs(SystemTime::now())
}

/// The `SystemTime` of `secs` seconds after the epoch.
pub(crate) fn system_time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Parses `YYYYMMDDTHHMMSSZ` (exactly; no other ISO 8601 shape).
pub(crate) fn parse_amz_date(s: &[u8]) -> Option<u64> {
    if s.len() != AMZ_DATE_LEN_BYTES || s[8] != b'T' || s[15] != b'Z' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[4..6])?;
    let day = digits(&s[6..8])?;
    let hour = digits(&s[9..11])?;
    let minute = digits(&s[11..13])?;
    let second = digits(&s[13..15])?;
    to_unix(year, month, day, hour, minute, second)
}

/// Formats seconds since the epoch as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_amz_date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Formats seconds since the epoch as RFC 3339 in UTC: `2013-05-24T00:00:00Z`.
pub fn format_rfc3339(secs: u64) -> String {
    let amz = format_amz_date(secs);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &amz[0..4],
        &amz[4..6],
        &amz[6..8],
        &amz[9..11],
        &amz[11..13],
        &amz[13..15]
    )
}

/// Parses an IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn parse_http_date(s: &[u8]) -> Option<u64> {
    const LEN: usize = 29;
    const WEEKDAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if s.len() != LEN
        || !WEEKDAYS.contains(&&s[0..3])
        || &s[3..5] != b", "
        || s[7] != b' '
        || s[11] != b' '
        || s[16] != b' '
        || s[19] != b':'
        || s[22] != b':'
        || &s[25..29] != b" GMT"
    {
        return None;
    }
    let day = digits(&s[5..7])?;
    let month_index = MONTHS.iter().position(|m| *m == &s[8..11])?;
    let month = i64::try_from(month_index).ok()? + 1;
    let year = digits(&s[12..16])?;
    let hour = digits(&s[17..19])?;
    let minute = digits(&s[20..22])?;
    let second = digits(&s[23..25])?;
    to_unix(year, month, day, hour, minute, second)
}

/// A run of ASCII digits as a number.
fn digits(s: &[u8]) -> Option<i64> {
    s.iter().try_fold(0_i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// Checks the fields and converts them to seconds since the epoch.
fn to_unix(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<u64> {
    if !(YEAR_MIN..=YEAR_MAX).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_the_amz_date_with_separators() {
        assert_eq!(format_rfc3339(1_369_353_600), "2013-05-24T00:00:00Z");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn amz_date_round_trips() {
        let t = parse_amz_date(b"20130524T000000Z").unwrap();
        assert_eq!(t, 1_369_353_600);
        assert_eq!(format_amz_date(t), "20130524T000000Z");
        let t = parse_amz_date(b"20150830T123600Z").unwrap();
        assert_eq!(t, 1_440_938_160);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        let leap = parse_amz_date(b"20240229T235959Z").unwrap();
        assert_eq!(format_amz_date(leap), "20240229T235959Z");
    }

    #[test]
    fn amz_date_rejects_bad_shapes() {
        for bad in [
            &b"20130524T000000"[..],
            b"20130524 000000Z",
            b"2013052aT000000Z",
            b"20130230T000000Z",
            b"20131324T000000Z",
            b"20130524T240000Z",
            b"20130524T006000Z",
            b"20130524T000060Z",
            b"19690101T000000Z",
            b"20230229T000000Z",
            b"",
        ] {
            assert_eq!(
                parse_amz_date(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn http_date_parses_imf_fixdate() {
        assert_eq!(
            parse_http_date(b"Fri, 24 May 2013 00:00:00 GMT"),
            Some(1_369_353_600)
        );
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date(b"Fri, 24 May 2013 00:00:00 UTC"), None);
        assert_eq!(parse_http_date(b"Fri, 24 Foo 2013 00:00:00 GMT"), None);
        assert_eq!(parse_http_date(b"Friday, 24-May-13 00:00:00 GMT"), None);
    }
}
