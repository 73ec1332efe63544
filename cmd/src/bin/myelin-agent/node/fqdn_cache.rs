//! The DNS cache behind `toFQDNs`, kept over time and across restarts as Cilium keeps it.
//!
//! - Every change to `fqdn-names` is written to the state directory by [`keep`], off the DNS
//!   answer's path, and the rows are read back before the derivation starts, so a restarted
//!   agent keeps the learned addresses' identities (the pinned ipcache entries are reused, not
//!   pruned) and their connections.
//! - A row holds for its answer's TTL, at least `--tofqdns-min-ttl`; once it has passed, the
//!   row goes only when no connection to its address is alive in conntrack (Cilium's
//!   "zombies"), so an open connection outlives the answer that allowed it.

use std::collections::BTreeSet;
use std::io::{self, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bpf::{Conntrack, CtEntry};
use reconcilers::fqdn::FqdnName;
use statedb::{Db, Table, Txn};
use tokio_util::sync::CancellationToken;

/// The cache's file in the state directory.
pub(crate) const CACHE_FILE: &str = "fqdn-names";

/// How often expired rows are looked at again (Cilium's DNS garbage collector runs each
/// minute; expiries due sooner wake it sooner).
const GC_INTERVAL: Duration = Duration::from_secs(60);
/// How long a connection stays alive without packets, as Cilium's conntrack timeouts: TCP
/// established 6 hours, closing 10 seconds, anything else a minute.
const TCP_IDLE: Duration = Duration::from_secs(6 * 3600);
const CLOSING_IDLE: Duration = Duration::from_secs(10);
const OTHER_IDLE: Duration = Duration::from_secs(60);
const PROTO_TCP: u8 = 6;

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The rows saved at `path`; a missing file is an empty cache, a line that does not parse is
/// skipped with a warning.
pub(crate) fn load(path: &Path) -> io::Result<Vec<FqdnName>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    Ok(text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| {
            let row = parse(line);
            if row.is_none() {
                tracing::warn!(path = %path.display(), line, "fqdn cache: line skipped");
            }
            row
        })
        .collect())
}

/// `ADDRESS NAME EXPIRES`.
fn parse(line: &str) -> Option<FqdnName> {
    let mut fields = line.split_whitespace();
    let ip: Ipv4Addr = fields.next()?.parse().ok()?;
    let name = fields.next()?;
    let expires: u64 = fields.next()?.parse().ok()?;
    fields
        .next()
        .is_none()
        .then(|| FqdnName::new(ip, name, expires))
}

/// Writes `rows` to `path` whole (a new file renamed over the old, so a crash leaves one or
/// the other).
pub(crate) fn save<'a>(path: &Path, rows: impl Iterator<Item = &'a FqdnName>) -> io::Result<()> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&format!("{} {} {}\n", row.ipv4, row.name, row.expires));
    }
    let staging = staging_path(path);
    let mut file = std::fs::File::create(&staging)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&staging, path)
}

fn staging_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

/// Saves `rows` off the async runtime (the file is synced); a failure is logged, the cache
/// in memory stays right.
async fn save_rows(path: &Path, rows: Vec<std::sync::Arc<FqdnName>>) {
    let path = path.to_owned();
    let saved = tokio::task::spawn_blocking(move || {
        save(&path, rows.iter().map(|r| &**r)).map_err(|e| (path, e))
    })
    .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err((path, error))) => {
            tracing::warn!(path = %path.display(), %error, "fqdn cache not saved");
        }
        Err(error) => tracing::warn!(%error, "fqdn cache: the save task failed"),
    }
}

/// The addresses with a connection still alive at `now_ns` (CLOCK_MONOTONIC_COARSE, the
/// datapath's clock), at either end.
pub(crate) fn live_addresses(entries: &[(bpf::CtKey, CtEntry)], now_ns: u64) -> BTreeSet<Ipv4Addr> {
    entries
        .iter()
        .filter(|(key, entry)| {
            let idle = match (key.proto, entry.closing()) {
                (_, true) => CLOSING_IDLE,
                (PROTO_TCP, false) => TCP_IDLE,
                _ => OTHER_IDLE,
            };
            now_ns.saturating_sub(entry.last_seen_ns)
                < u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX)
        })
        .flat_map(|(key, _)| [key.saddr(), key.daddr()])
        .collect()
}

/// The rows to delete at `now` (Unix seconds): expired, and no live connection to them.
pub(crate) fn expired<'a>(
    rows: impl Iterator<Item = &'a FqdnName>,
    now: u64,
    live: &BTreeSet<Ipv4Addr>,
) -> Vec<FqdnName> {
    rows.filter(|row| row.expires <= now && !live.contains(&row.ipv4))
        .cloned()
        .collect()
}

/// Keeps the cache until `shutdown`: saves the table whenever it changed (the one writer of
/// the file, so learning a name never waits for a disk), and deletes expired rows without
/// live connections.
pub(crate) async fn keep(
    db: Db,
    table: Table<FqdnName>,
    conntrack: Conntrack,
    path: PathBuf,
    shutdown: CancellationToken,
) {
    // What the file holds: the rows the agent read back at start.
    let mut saved = db.read_txn().revision(&table);
    loop {
        let now = unix_now();
        let (rows, revision, changed) = {
            let txn = db.read_txn();
            let rows: Vec<_> = txn
                .all(&table)
                .map(|e| std::sync::Arc::clone(&e.object))
                .collect();
            (rows, txn.revision(&table), txn.table_watch(&table))
        };
        if revision != saved {
            save_rows(&path, rows.clone()).await;
            saved = revision;
        }
        let next = rows.iter().map(|r| r.expires).filter(|e| *e > now).min();
        let wait = next.map_or(GC_INTERVAL, |e| {
            Duration::from_secs(e.saturating_sub(now)).min(GC_INTERVAL)
        });
        // A new answer may expire sooner than what the collector waits for.
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = changed.fired() => continue,
            () = tokio::time::sleep(wait.max(Duration::from_secs(1))) => {}
        }
        let now = unix_now();
        if !rows.iter().any(|r| r.expires <= now) {
            continue;
        }
        let live = match (conntrack.iter(), monotonic_coarse_ns()) {
            (Ok(entries), Some(now_ns)) => live_addresses(&entries, now_ns),
            (Err(error), _) => {
                tracing::warn!(%error, "fqdn cache: conntrack unreadable, expiry put off");
                continue;
            }
            (_, None) => continue,
        };
        let mut txn = db.write_txn(&[&table]);
        let gone = expired(txn.all(&table).map(|e| &*e.object), now, &live);
        for row in &gone {
            if let Err(error) = txn.delete(&table, row) {
                tracing::warn!(%error, name = row.name, ip = %row.ipv4, "fqdn cache: not deleted");
            }
        }
        txn.commit();
        if !gone.is_empty() {
            tracing::info!(names = gone.len(), "fqdn cache: expired answers forgotten");
        }
    }
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: what `bpf_ktime_get_coarse_ns` reads.
fn monotonic_coarse_ns() -> Option<u64> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE).ok()?;
    let secs = u64::try_from(now.tv_sec()).ok()?;
    let nanos = u64::try_from(now.tv_nsec()).ok()?;
    Some(secs * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_file_round_trips_and_skips_bad_lines() {
        let dir = std::env::temp_dir().join(format!("myelin-fqdn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(CACHE_FILE);
        assert!(load(&path).expect("missing is empty").is_empty());
        let rows = [
            FqdnName::new(
                Ipv4Addr::new(140, 82, 121, 6),
                "api.github.com",
                1_700_000_060,
            ),
            FqdnName::new(Ipv4Addr::new(140, 82, 121, 6), "github.com", 1_700_003_600),
        ];
        save(&path, rows.iter()).expect("saved");
        let mut text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "140.82.121.6 api.github.com 1700000060\n140.82.121.6 github.com 1700003600\n"
        );
        text.push_str("not an address x 1\n140.82.121.7 two fields\n");
        std::fs::write(&path, text).expect("write");
        assert_eq!(load(&path).expect("loaded"), rows);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn expired_rows_go_unless_a_connection_to_them_is_alive() {
        let api = Ipv4Addr::new(140, 82, 121, 6);
        let support = Ipv4Addr::new(185, 199, 108, 133);
        let pod = Ipv4Addr::new(10, 244, 0, 5);
        let second = 1_000_000_000u64;
        let now_ns = 100_000 * second;
        let connection = |daddr, proto, idle_s: u64, closing: bool| {
            let key = bpf::CtKey::new(pod, 40000, daddr, 443, proto, bpf::Direction::Egress);
            let mut entry = CtEntry::default();
            entry.last_seen_ns = now_ns - idle_s * second;
            entry.flags = if closing { CtEntry::CLOSING } else { 0 };
            (key, entry)
        };
        // An established TCP connection to api idle for an hour is alive; one to support that
        // is closing and idle for a minute is not; UDP idle for two minutes is not either.
        let entries = [
            connection(api, PROTO_TCP, 3600, false),
            connection(support, PROTO_TCP, 60, true),
            connection(support, 17, 120, false),
        ];
        let live = live_addresses(&entries, now_ns);
        assert!(live.contains(&api) && !live.contains(&support), "{live:?}");
        let rows = [
            FqdnName::new(api, "api.github.com", 10),
            FqdnName::new(support, "support.github.com", 10),
            FqdnName::new(support, "later.github.com", 30),
        ];
        let gone = expired(rows.iter(), 20, &live);
        assert_eq!(gone, [rows[1].clone()]);
    }
}
