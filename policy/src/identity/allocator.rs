use std::collections::{BTreeSet, HashMap};

use schema::labels::{Labels, Source};

use super::Identity;

/// Hands out one identity per distinct label set, counting its users so the number can be
/// reused once the last endpoint with those labels is gone.
///
/// Pod label sets get cluster-local numbers (256..=65535); label sets made of CIDR or FQDN
/// labels get node-local numbers (bit 24 set); reserved label sets keep their well-known
/// numbers.
#[derive(Debug, Default)]
pub struct Allocator {
    by_labels: HashMap<Labels, (Identity, usize)>,
    by_id: HashMap<Identity, Labels>,
    next_cluster: u32,
    next_local: u32,
    free_cluster: Vec<u32>,
    free_local: Vec<u32>,
    /// Numbers kept for label sets expected back (what the datapath held before an agent
    /// restart): only [`Allocator::allocate_preferring`] hands them out, until
    /// [`Allocator::release_held`].
    held: BTreeSet<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocatorError {
    #[error("identity space {scope} is exhausted")]
    Exhausted { scope: &'static str },
}

/// What [`Allocator::allocate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub identity: Identity,
    /// The label set had no identity before this call.
    pub is_new: bool,
}

impl Allocator {
    pub fn new() -> Self {
        Self {
            next_cluster: Identity::FIRST_CLUSTER_LOCAL,
            next_local: Identity::LOCAL_SCOPE + 1,
            ..Self::default()
        }
    }

    pub fn allocate(&mut self, labels: &Labels) -> Result<Allocation, AllocatorError> {
        self.allocate_preferring(labels, None)
    }

    /// Keeps a cluster-local or node-local number for [`Allocator::allocate_preferring`]:
    /// plain allocations skip it. Numbers in use and reserved ones are ignored.
    pub fn hold(&mut self, identity: Identity) {
        let cluster =
            (Identity::FIRST_CLUSTER_LOCAL..=Identity::LAST_CLUSTER_LOCAL).contains(&identity.0);
        let local = (Identity::LOCAL_SCOPE + 1..=Identity::LAST_LOCAL_SCOPE).contains(&identity.0);
        if (cluster || local) && !self.by_id.contains_key(&identity) {
            self.held.insert(identity.0);
        }
    }

    /// Hands the held numbers nobody took back to the pool.
    pub fn release_held(&mut self) {
        for n in std::mem::take(&mut self.held) {
            if self.by_id.contains_key(&Identity(n)) {
                continue;
            }
            if Identity(n).is_local_scope() {
                self.free_local.push(n);
            } else {
                self.free_cluster.push(n);
            }
        }
    }

    /// As [`Allocator::allocate`], but a new label set gets `preferred` if that number is held,
    /// free and of the label set's scope, so a restarted agent gives label sets the numbers the
    /// kernel still has.
    pub fn allocate_preferring(
        &mut self,
        labels: &Labels,
        preferred: Option<Identity>,
    ) -> Result<Allocation, AllocatorError> {
        if let Some((identity, users)) = self.by_labels.get_mut(labels) {
            *users += 1;
            return Ok(Allocation {
                identity: *identity,
                is_new: false,
            });
        }
        let identity = match reserved_identity(labels) {
            Some(identity) => identity,
            None if is_local_scope(labels) => {
                match preferred.filter(|p| p.is_local_scope() && self.held.remove(&p.0)) {
                    Some(preferred) => preferred,
                    None => Identity(self.take_local()?),
                }
            }
            None => match preferred.filter(|p| !p.is_local_scope() && self.held.remove(&p.0)) {
                Some(preferred) => preferred,
                None => Identity(self.take_cluster()?),
            },
        };
        self.by_labels.insert(labels.clone(), (identity, 1));
        self.by_id.insert(identity, labels.clone());
        Ok(Allocation {
            identity,
            is_new: true,
        })
    }

    /// Drops one user of `identity`; returns true when it was the last one and the number is
    /// free again.
    pub fn release(&mut self, identity: Identity) -> bool {
        let Some(labels) = self.by_id.get(&identity) else {
            return false;
        };
        let Some((_, users)) = self.by_labels.get_mut(labels) else {
            return false;
        };
        *users -= 1;
        if *users > 0 {
            return false;
        }
        if let Some(labels) = self.by_id.remove(&identity) {
            self.by_labels.remove(&labels);
        }
        if identity.is_local_scope() {
            self.free_local.push(identity.0);
        } else if !identity.is_reserved() {
            self.free_cluster.push(identity.0);
        }
        true
    }

    pub fn labels(&self, identity: Identity) -> Option<&Labels> {
        self.by_id.get(&identity)
    }

    pub fn lookup(&self, labels: &Labels) -> Option<Identity> {
        self.by_labels.get(labels).map(|(identity, _)| *identity)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Identity, &Labels)> {
        self.by_id
            .iter()
            .map(|(identity, labels)| (*identity, labels))
    }

    fn take_cluster(&mut self) -> Result<u32, AllocatorError> {
        loop {
            let n = take(
                &mut self.free_cluster,
                &mut self.next_cluster,
                Identity::LAST_CLUSTER_LOCAL,
                "cluster-local",
            )?;
            // A held number, or a held one handed out by preference: skipped here; the first
            // comes back through `release_held`, the second through `release`.
            if !self.held.contains(&n) && !self.by_id.contains_key(&Identity(n)) {
                return Ok(n);
            }
        }
    }

    fn take_local(&mut self) -> Result<u32, AllocatorError> {
        loop {
            let n = take(
                &mut self.free_local,
                &mut self.next_local,
                Identity::LAST_LOCAL_SCOPE,
                "node-local",
            )?;
            // As in `take_cluster`: held numbers wait for the label set they were held for.
            if !self.held.contains(&n) && !self.by_id.contains_key(&Identity(n)) {
                return Ok(n);
            }
        }
    }
}

fn take(
    free: &mut Vec<u32>,
    next: &mut u32,
    last: u32,
    scope: &'static str,
) -> Result<u32, AllocatorError> {
    // Lowest freed number first keeps numbers small and stable across churn.
    if let Some(pos) = free
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .map(|(i, _)| i)
    {
        return Ok(free.swap_remove(pos));
    }
    if *next > last {
        return Err(AllocatorError::Exhausted { scope });
    }
    let n = *next;
    *next += 1;
    Ok(n)
}

fn reserved_identity(labels: &Labels) -> Option<Identity> {
    let mut iter = labels.iter();
    let (first, rest) = (iter.next()?, iter.next());
    if first.source != Source::Reserved || rest.is_some() {
        return None;
    }
    Identity::RESERVED
        .iter()
        .find(|(_, name)| *name == first.key)
        .map(|(identity, _)| *identity)
}

fn is_local_scope(labels: &Labels) -> bool {
    labels
        .iter()
        .any(|label| matches!(label.source, Source::Cidr | Source::Fqdn))
}
