//! `--timeout` values: `1s`, `500ms`, `1.5s`, or plain seconds.

use std::time::Duration;

pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration: use e.g. 1s, 500ms or 1.5s");
    let duration = if let Some(ms) = text.strip_suffix("ms") {
        Duration::from_millis(ms.parse().map_err(|_| bad())?)
    } else {
        let secs: f64 = text
            .strip_suffix('s')
            .unwrap_or(text)
            .parse()
            .map_err(|_| bad())?;
        Duration::try_from_secs_f64(secs).map_err(|_| bad())?
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: the timeout must be longer than zero"));
    }
    Ok(duration)
}

/// The way `parse` reads it back: `1s`, `1500ms`.
pub(crate) fn show(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}
