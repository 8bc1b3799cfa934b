//! Local time, for "thumbnails made today", the tenants' daily quotas and the dates inside ZIP
//! archives (which have no time zone). The process's time zone is the system's (`TZ`,
//! `/etc/localtime`; UTC in most containers).

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment broken down in local time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Local {
    pub year: i32,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `secs` (since the epoch) in local time.
pub(crate) fn local(secs: i64) -> Local {
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain data the call fills in; both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
    if !ok {
        return Local { year: 1980, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
    }
    Local {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
    }
}

/// The start of the local day holding `secs` (on a day the clocks change, too: the local date's
/// 00:00 turned back into seconds, not `secs` less the hours shown since).
pub(crate) fn midnight(secs: i64) -> i64 {
    if let Some(day) = test_day() {
        return secs - secs.rem_euclid(day);
    }
    let t = secs as libc::time_t;
    // SAFETY: `tm` is plain data the calls fill in and read; both pointers are valid for the calls.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if !unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        (tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_isdst) = (0, 0, 0, -1);
        let start = unsafe { libc::mktime(&mut tm) };
        if start != -1 {
            return start as i64;
        }
    }
    let l = local(secs);
    secs - (l.hour * 3600 + l.minute * 60 + l.second) as i64
}

/// The start of the local day after the one holding `secs` (days of 23 or 25 hours included).
pub(crate) fn next_midnight(secs: i64) -> i64 {
    match test_day() {
        Some(day) => midnight(secs) + day,
        None => midnight(midnight(secs) + 26 * 3600),
    }
}

/// Test builds only (`--features test-hooks`): `THUMBGEN_TEST_DAY_SECONDS` makes a day that many
/// seconds long, so the tests can see a day turn.
#[cfg(feature = "test-hooks")]
fn test_day() -> Option<i64> {
    std::env::var("THUMBGEN_TEST_DAY_SECONDS").ok()?.parse().ok().filter(|d: &i64| *d > 0)
}

#[cfg(not(feature = "test-hooks"))]
fn test_day() -> Option<i64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midnight_starts_the_same_local_day() {
        let now = now();
        let start = midnight(now);
        assert!(now - start < 86_400 + 3600 && start <= now);
        let (a, b) = (local(start), local(now));
        assert_eq!((a.year, a.month, a.day), (b.year, b.month, b.day));
        assert_eq!((a.hour, a.minute, a.second), (0, 0, 0));
        let next = next_midnight(now);
        assert!(next > now && next - start >= 23 * 3600 && next - start <= 25 * 3600);
        assert_eq!(local(next).hour, 0);
    }

    #[test]
    fn a_day_the_clocks_change_still_starts_at_its_own_midnight() {
        // Only meaningful where the zone has summer time; checked against the zone's own rules.
        for day in 0..366 {
            let noon = 1_767_268_800 + day * 86_400; // 2026-01-01 12:00 UTC onwards
            let start = midnight(noon);
            let l = local(start);
            assert_eq!((l.hour, l.minute, l.second), (0, 0, 0), "day {day}");
            assert_eq!(midnight(start + 1), start);
            assert_eq!(midnight(next_midnight(noon) - 1), start, "day {day}");
        }
    }
}
