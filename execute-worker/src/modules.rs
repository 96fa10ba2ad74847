//! The artifacts an execute worker keeps loaded, each in its holder process, within a byte
//! budget: least recently used first out.
//!
//! The budget counts each artifact file's size. A holder's memory is its artifact's code and
//! data deserialized (about the payload's size), the copy-on-write image of the initial
//! memory (part of the same payload) and a small process, so the file size is a good proxy
//! that the worker knows before it forks the holder. The artifact a request needs is loaded
//! even when it alone is over the budget: every other one is unloaded first.

use std::collections::HashMap;

use pvf_common::message::LoadedModules;
use pvf_common::params::ArtifactId;

/// Artifacts loaded at most, whatever their size: far more than the codes a validator
/// validates, far fewer than the processes and descriptors a worker may have.
pub const MAX_LOADED: usize = 128;

/// Loaded artifacts; `H` is what holds each (a holder process in the worker).
pub struct Modules<H> {
    loaded: HashMap<ArtifactId, Entry<H>>,
    bytes: u64,
    /// Counts uses, to order them.
    clock: u64,
    /// Unloaded to make room since the last [`Modules::report`].
    evicted: u32,
}

struct Entry<H> {
    holder: H,
    bytes: u64,
    last_used: u64,
}

impl<H> Default for Modules<H> {
    fn default() -> Self {
        Self {
            loaded: HashMap::new(),
            bytes: 0,
            clock: 0,
            evicted: 0,
        }
    }
}

impl<H> Modules<H> {
    /// The holder of `id`, marked as just used; `None` if it is not loaded.
    pub fn get(&mut self, id: &ArtifactId) -> Option<&mut H> {
        self.clock += 1;
        let entry = self.loaded.get_mut(id)?;
        entry.last_used = self.clock;
        Some(&mut entry.holder)
    }

    /// Unloads least recently used artifacts until one more, `incoming` bytes large, fits in
    /// `budget` and [`MAX_LOADED`], or nothing is left to unload.
    pub fn make_room(&mut self, incoming: u64, budget: u64) {
        while self.bytes.saturating_add(incoming) > budget || self.loaded.len() >= MAX_LOADED {
            let Some(oldest) = self
                .loaded
                .iter()
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(id, _)| *id)
            else {
                return;
            };
            self.remove(&oldest);
            self.evicted += 1;
        }
    }

    /// Keeps `holder` for `id`, `bytes` large, as just used.
    pub fn insert(&mut self, id: ArtifactId, holder: H, bytes: u64) {
        self.remove(&id);
        self.clock += 1;
        self.bytes += bytes;
        let entry = Entry {
            holder,
            bytes,
            last_used: self.clock,
        };
        self.loaded.insert(id, entry);
    }

    /// Unloads `id` (dropping its holder).
    pub fn remove(&mut self, id: &ArtifactId) {
        if let Some(entry) = self.loaded.remove(id) {
            self.bytes -= entry.bytes;
        }
    }

    /// Unloads every artifact whose holder fails `keep`; returns how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&H) -> bool) -> usize {
        let before = self.loaded.len();
        self.loaded.retain(|_, entry| keep(&entry.holder));
        self.bytes = self.loaded.values().map(|entry| entry.bytes).sum();
        before - self.loaded.len()
    }

    /// What is loaded now, and what was unloaded to make room since the last report.
    pub fn report(&mut self) -> LoadedModules {
        LoadedModules {
            count: self.loaded.len() as u32,
            bytes: self.bytes,
            evicted: std::mem::take(&mut self.evicted),
        }
    }
}

#[cfg(test)]
mod tests {
    use pvf_common::params::ExecutorParams;

    use super::*;

    fn id(n: u8) -> ArtifactId {
        ArtifactId::new(&[n], &ExecutorParams::default())
    }

    #[test]
    fn retain_unloads_the_holders_that_fail_and_frees_their_bytes() {
        let mut modules = Modules::default();
        for n in 1..=4 {
            modules.insert(id(n), n, 10 * u64::from(n));
        }
        assert_eq!(modules.retain(|n| n % 2 == 0), 2);
        assert!(modules.get(&id(1)).is_none() && modules.get(&id(3)).is_none());
        assert_eq!(modules.get(&id(4)), Some(&mut 4));
        let report = modules.report();
        assert_eq!((report.count, report.bytes, report.evicted), (2, 60, 0));
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_bytes_stay_in_budget() {
        let mut modules = Modules::default();
        for n in 1..=3 {
            modules.make_room(40, 100);
            modules.insert(id(n), n, 40);
        }
        // 1 went to make room for 3.
        assert!(modules.get(&id(1)).is_none());
        assert_eq!(
            modules.report(),
            LoadedModules {
                count: 2,
                bytes: 80,
                evicted: 1
            }
        );
        // Using 2 makes 3 the oldest.
        assert_eq!(modules.get(&id(2)), Some(&mut 2));
        modules.make_room(40, 100);
        modules.insert(id(4), 4, 40);
        assert!(modules.get(&id(3)).is_none());
        assert!(modules.get(&id(2)).is_some() && modules.get(&id(4)).is_some());
        assert_eq!(modules.report().evicted, 1);
        // Reported once.
        assert_eq!(modules.report().evicted, 0);
    }

    #[test]
    fn the_count_is_bounded_too() {
        let mut modules = Modules::default();
        for n in 0..=MAX_LOADED {
            modules.make_room(1, u64::MAX);
            modules.insert(id(n as u8), n, 1);
        }
        let report = modules.report();
        assert_eq!((report.count, report.evicted), (MAX_LOADED as u32, 1));
        assert!(modules.get(&id(0)).is_none());
    }

    #[test]
    fn an_artifact_over_the_budget_still_loads_alone() {
        let mut modules = Modules::default();
        modules.insert(id(1), 1, 10);
        modules.insert(id(2), 2, 10);
        modules.make_room(500, 100);
        modules.insert(id(3), 3, 500);
        assert_eq!(
            modules.report(),
            LoadedModules {
                count: 1,
                bytes: 500,
                evicted: 2
            }
        );
        modules.remove(&id(3));
        assert_eq!(modules.report().bytes, 0);
    }
}
