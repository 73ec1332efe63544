//! `--since`/`--until` values as hubble takes them: a duration ago (`5m`, `1h30m`, `90s`) or an
//! RFC3339 time (`2024-06-09T20:38:30Z`, with fractions and offsets).

use std::time::{Duration, SystemTime};

use prost_types::Timestamp;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is neither a duration (5m, 1h30m) nor an RFC3339 time")]
pub(crate) struct TimeError(String);

pub(crate) fn parse(text: &str, now: SystemTime) -> Result<Timestamp, TimeError> {
    let error = || TimeError(text.to_owned());
    if let Some(ago) = duration(text) {
        let at = now.checked_sub(ago).ok_or_else(error)?;
        let since_epoch = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| error())?;
        return Ok(Timestamp {
            seconds: i64::try_from(since_epoch.as_secs()).map_err(|_| error())?,
            nanos: i32::try_from(since_epoch.subsec_nanos()).map_err(|_| error())?,
        });
    }
    rfc3339(text).ok_or_else(error)
}

/// Go's `time.ParseDuration` units, without signs.
fn duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .filter(|n| *n > 0)?;
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(number * seconds).ok()?;
    }
    Some(total)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn rfc3339(text: &str) -> Option<Timestamp> {
    let num = |s: &str| s.parse::<i64>().ok();
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut date = date.splitn(3, '-');
    let (year, month, day) = (num(date.next()?)?, num(date.next()?)?, num(date.next()?)?);
    let (clock, offset) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, zone) = time.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        (clock, sign * (num(h)? * 3600 + num(m)? * 60))
    };
    let (clock, fraction) = match clock.split_once('.') {
        Some((clock, fraction)) => (clock, fraction),
        None => (clock, ""),
    };
    let mut clock = clock.splitn(3, ':');
    let (hour, minute, second) = (
        num(clock.next()?)?,
        num(clock.next()?)?,
        num(clock.next()?)?,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        i32::try_from(num(&digits)?).ok()?
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Some(Timestamp { seconds, nanos })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
