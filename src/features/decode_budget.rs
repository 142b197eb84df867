//! A process-wide budget for the memory that reference-image decoding holds at once.
//!
//! Each photo is bounded on its own (`ImageLimits`), but every worker may decode one at the same
//! time: on a 12-core Orin, twelve of the largest accepted photos would need about 4.5 GB, far past
//! the unit's `MemoryMax`. Workers therefore reserve a photo's decoding cost here first and wait
//! while others hold the budget; small photos fit beside each other and never wait.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Bytes that all reference-image decodes together may hold: room for the largest accepted
/// photo (about 376 MB with the default limits) and some small ones beside it.
pub(crate) const DECODE_MEMORY_BYTES: u64 = 512 * 1024 * 1024;

/// The budget every brief's reference image is decoded under.
pub(crate) static DECODE_MEMORY: MemoryBudget = MemoryBudget::new(DECODE_MEMORY_BYTES);

/// Bytes shared by concurrent holders; a reservation waits until its bytes are free.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    total: u64,
    state: Mutex<BudgetState>,
    released: Condvar,
}

#[derive(Debug)]
struct BudgetState {
    available: u64,
    waiting: usize,
}

/// Bytes held from a [`MemoryBudget`] until dropped.
#[derive(Debug)]
pub(crate) struct Reservation<'budget> {
    budget: &'budget MemoryBudget,
    bytes: u64,
}

impl MemoryBudget {
    /// A budget of `total` bytes, all available.
    pub const fn new(total: u64) -> MemoryBudget {
        MemoryBudget {
            total,
            state: Mutex::new(BudgetState {
                available: total,
                waiting: 0,
            }),
            released: Condvar::new(),
        }
    }

    /// Takes `bytes` (at most the whole budget, so one oversized request cannot wait forever),
    /// blocking while other reservations hold too much.
    pub(crate) fn reserve(&self, bytes: u64) -> Reservation<'_> {
        let bytes = bytes.min(self.total);
        let mut state = self.lock();
        if state.available < bytes {
            state.waiting += 1;
            while state.available < bytes {
                state = self
                    .released
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.waiting -= 1;
        }
        state.available -= bytes;
        Reservation {
            budget: self,
            bytes,
        }
    }

    /// Takes `bytes` (at most the whole budget) only if they are free now; `None` otherwise.
    pub(crate) fn try_reserve(&self, bytes: u64) -> Option<Reservation<'_>> {
        let bytes = bytes.min(self.total);
        let mut state = self.lock();
        if state.available < bytes {
            return None;
        }
        state.available -= bytes;
        Some(Reservation {
            budget: self,
            bytes,
        })
    }

    /// Bytes not reserved now.
    #[cfg(test)]
    pub fn available(&self) -> u64 {
        self.lock().available
    }

    /// Reservations waiting for bytes now.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    // The state stays consistent whatever panicked while holding the lock (every update is a
    // single assignment), so a poisoned lock is used as it is rather than taking packd down.
    fn lock(&self) -> MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Reservation<'_> {
    /// Bytes this reservation holds.
    #[cfg(test)]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.lock().available += self.bytes;
        self.budget.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Blocks until `budget` has `count` waiters (a condition, polled; no timing assumed).
    fn until_waiting(budget: &MemoryBudget, count: usize) {
        while budget.waiting() != count {
            std::thread::yield_now();
        }
    }

    #[test]
    fn small_reservations_share_the_budget_without_waiting() {
        let budget = MemoryBudget::new(100);
        let first = budget.reserve(40);
        let second = budget.reserve(60);
        assert_eq!(budget.available(), 0);
        drop(first);
        assert_eq!(budget.available(), 40);
        drop(second);
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn a_reservation_waits_until_enough_is_released() {
        let budget = MemoryBudget::new(100);
        let held = budget.reserve(80);
        let (done, finished) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let reservation = budget.reserve(30);
                done.send(reservation.bytes()).expect("test channel");
            });
            until_waiting(&budget, 1);
            assert!(
                finished.try_recv().is_err(),
                "30 bytes were granted while only 20 were free"
            );
            drop(held);
            assert_eq!(finished.recv().expect("the waiter finishes"), 30);
        });
        assert_eq!(budget.available(), 100);
        assert_eq!(budget.waiting(), 0);
    }

    #[test]
    fn try_reserve_takes_free_bytes_and_never_waits() {
        let budget = MemoryBudget::new(100);
        let first = budget.try_reserve(60).expect("60 of 100 are free");
        assert!(budget.try_reserve(50).is_none(), "only 40 are free");
        let second = budget.try_reserve(40).expect("40 are free");
        assert_eq!(budget.available(), 0);
        drop((first, second));
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn a_request_over_the_whole_budget_takes_the_whole_budget() {
        let budget = MemoryBudget::new(100);
        let reservation = budget.reserve(1_000);
        assert_eq!(reservation.bytes(), 100);
        assert_eq!(budget.available(), 0);
    }
}
