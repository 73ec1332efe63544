//! Every pod probing every pod, on real traffic, in the table `policy matrix` prints.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use policy::trace::Probe;

use super::connect::{self, Outcome, ProbeError, Verdict};
use crate::matrix::{Cell, Matrix};

/// Probes in flight at once: each denied pair waits out the whole timeout, so a matrix of
/// mostly denied pairs takes about (pairs / CONCURRENCY) timeouts.
pub(crate) const CONCURRENCY: usize = 16;

/// A pod as the probes see it: its name in the table, its namespace and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbePod {
    /// `ns/pod`.
    pub(crate) name: String,
    pub(crate) netns: PathBuf,
    pub(crate) ip: IpAddr,
}

impl std::str::FromStr for ProbePod {
    type Err = String;

    /// `ns/pod,NETNS,IP`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not a pod: use ns/pod,NETNS,IP");
        let mut parts = text.split(',');
        let (Some(name), Some(netns), Some(ip), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        match name.split_once('/') {
            Some((ns, pod)) if !ns.is_empty() && !pod.is_empty() && !pod.contains('/') => {}
            _ => return Err(bad()),
        }
        if netns.is_empty() {
            return Err(bad());
        }
        Ok(ProbePod {
            name: name.to_owned(),
            netns: PathBuf::from(netns),
            ip: ip.parse().map_err(|_| bad())?,
        })
    }
}

/// Probes every ordered pair of `pods` (a pod to itself included, which stays inside its
/// namespace) for each of `probes`, `CONCURRENCY` at a time. Stops at the first probe that
/// could not be run at all (a namespace that does not open, say).
pub(crate) fn probe_matrix(
    pods: &[ProbePod],
    probes: &[Probe],
    timeout: Duration,
) -> Result<Matrix, ProbeError> {
    let n = pods.len();
    let jobs: Vec<(usize, usize, usize)> = (0..probes.len())
        .flat_map(|p| (0..n).flat_map(move |from| (0..n).map(move |to| (p, from, to))))
        .collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(p, from, to)) = jobs.get(i) else {
                break;
            };
            let outcome = connect::probe(Some(&pods[from].netns), pods[to].ip, probes[p], timeout);
            failed.fetch_or(outcome.is_err(), Ordering::Relaxed);
            done.push((i, outcome));
        }
        done
    };
    let mut cells = vec![Cell::Denied; jobs.len()];
    let finished: Vec<Vec<(usize, Result<Outcome, ProbeError>)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CONCURRENCY.min(jobs.len()))
            .map(|_| scope.spawn(work))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    for (i, outcome) in finished.into_iter().flatten() {
        cells[i] = cell(outcome?.verdict);
    }
    let mut cells = cells.into_iter();
    Ok(Matrix {
        names: pods.iter().map(|p| p.name.clone()).collect(),
        tables: probes
            .iter()
            .map(|probe| {
                let table = (0..n).map(|_| cells.by_ref().take(n).collect()).collect();
                (*probe, table)
            })
            .collect(),
    })
}

fn cell(verdict: Verdict) -> Cell {
    match verdict {
        Verdict::Allowed => Cell::Allowed,
        Verdict::Denied => Cell::Denied,
        Verdict::Refused => Cell::Refused,
    }
}
