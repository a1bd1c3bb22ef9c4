// SPDX-License-Identifier: GPL-2.0

//! Request id bookkeeping.
//!
//! Each request in flight occupies one slot of a fixed-size table. The
//! request id sent to xenstore encodes the slot number in its low bits and
//! a per-slot generation counter in the remaining high bits:
//!
//! ```text
//! req_id = generation << SLOT_BITS | slot      (generation != 0)
//! ```
//!
//! where `SLOT_BITS` is the number of bits needed for `N - 1`. A reply is
//! matched with [`ReqTable::lookup`], which rejects id 0 (used by watch
//! events), slots out of range, slots not in flight, and ids whose
//! generation does not match the current use of the slot (a late reply to
//! a request that was abandoned and whose slot was reused, or a made-up
//! id). Generations are never 0, so no request ever gets id 0. With
//! `N <= 65536`, at least 16 bits of generation remain; an id can only be
//! confused with an older one after 65535 reuses of the same slot.

/// Largest supported table size.
pub const MAX_SLOTS: usize = 1 << 16;

/// Why a request id was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqIdError {
    /// Id 0 is never allocated (watch events carry request id 0).
    Zero,
    /// The slot encoded in the id does not exist.
    BadSlot,
    /// The slot is not in flight.
    NotInFlight,
    /// The slot is in flight, but for a different (newer) request.
    Stale,
}

/// A fixed-capacity table of `N` request slots (`1 <= N <= MAX_SLOTS`,
/// checked at compile time).
#[derive(Clone, Debug)]
pub struct ReqTable<const N: usize> {
    generation: [u32; N],
    busy: [bool; N],
    in_flight: usize,
    next: usize,
}

impl<const N: usize> Default for ReqTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ReqTable<N> {
    /// Compile-time check of `N`.
    const VALID: () = assert!(N >= 1 && N <= MAX_SLOTS, "ReqTable size out of range");

    /// Number of low id bits that hold the slot.
    pub const SLOT_BITS: u32 = if N <= 1 {
        0
    } else {
        usize::BITS - (N - 1).leading_zeros()
    };

    /// Mask of the slot bits of an id.
    const SLOT_MASK: u32 = if Self::SLOT_BITS == 0 {
        0
    } else {
        u32::MAX >> (32 - Self::SLOT_BITS)
    };

    /// Largest generation value.
    const GEN_MAX: u32 = u32::MAX >> Self::SLOT_BITS;

    /// An empty table.
    pub const fn new() -> Self {
        Self::with_seed(0)
    }

    /// An empty table whose per-slot generations start after `seed`
    /// (reduced to the generation bits). Seeding with a random value makes
    /// ids differ between table instances (e.g. across a reconnect), so
    /// late replies addressed to a previous instance are likely rejected.
    pub const fn with_seed(seed: u32) -> Self {
        let () = Self::VALID;
        ReqTable {
            generation: [seed & Self::GEN_MAX; N],
            busy: [false; N],
            in_flight: 0,
            next: 0,
        }
    }

    /// The number of slots.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The number of requests in flight.
    pub const fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether every slot is in use.
    pub const fn is_full(&self) -> bool {
        self.in_flight >= N
    }

    fn make_id(slot: usize, generation: u32) -> u32 {
        // `slot < N <= 2^SLOT_BITS`, so it fits the slot bits.
        let slot = u32::try_from(slot).unwrap_or(0) & Self::SLOT_MASK;
        generation.wrapping_shl(Self::SLOT_BITS) | slot
    }

    /// Allocates a slot; returns `(slot, req_id)`, or `None` if all slots are
    /// in flight. Slots are handed out round-robin and each allocation bumps
    /// the slot's generation, so the id differs from every recent id of the
    /// same slot. The id is never 0.
    pub fn alloc(&mut self) -> Option<(usize, u32)> {
        if self.is_full() {
            return None;
        }
        for k in 0..N {
            let slot = self.next.wrapping_add(k).checked_rem(N).unwrap_or(0);
            let (Some(busy), Some(generation)) =
                (self.busy.get_mut(slot), self.generation.get_mut(slot))
            else {
                continue;
            };
            if *busy {
                continue;
            }
            let mut g = generation.wrapping_add(1) & Self::GEN_MAX;
            if g == 0 {
                g = 1;
            }
            *generation = g;
            *busy = true;
            self.in_flight = self.in_flight.saturating_add(1);
            self.next = slot.wrapping_add(1).checked_rem(N).unwrap_or(0);
            return Some((slot, Self::make_id(slot, g)));
        }
        None
    }

    /// Finds the slot of an in-flight request by the id of its reply.
    pub fn lookup(&self, req_id: u32) -> Result<usize, ReqIdError> {
        if req_id == 0 {
            return Err(ReqIdError::Zero);
        }
        let slot = (req_id & Self::SLOT_MASK) as usize;
        let generation = req_id.wrapping_shr(Self::SLOT_BITS);
        let busy = *self.busy.get(slot).ok_or(ReqIdError::BadSlot)?;
        let current = *self.generation.get(slot).ok_or(ReqIdError::BadSlot)?;
        if !busy {
            return Err(ReqIdError::NotInFlight);
        }
        if current != generation {
            return Err(ReqIdError::Stale);
        }
        Ok(slot)
    }

    /// [`lookup`](Self::lookup) and, on success, [`free`](Self::free).
    pub fn take(&mut self, req_id: u32) -> Result<usize, ReqIdError> {
        let slot = self.lookup(req_id)?;
        self.free(slot);
        Ok(slot)
    }

    /// Frees a slot; returns whether it was in flight (freeing an idle or
    /// nonexistent slot does nothing). A late reply to the freed request is
    /// rejected by [`lookup`](Self::lookup).
    pub fn free(&mut self, slot: usize) -> bool {
        match self.busy.get_mut(slot) {
            Some(b) if *b => {
                *b = false;
                self.in_flight = self.in_flight.saturating_sub(1);
                true
            }
            _ => false,
        }
    }

    /// Whether `slot` is in flight.
    pub fn is_in_flight(&self, slot: usize) -> bool {
        self.busy.get(slot).copied().unwrap_or(false)
    }

    /// The current request id of an in-flight slot.
    pub fn req_id(&self, slot: usize) -> Option<u32> {
        if !self.is_in_flight(slot) {
            return None;
        }
        Some(Self::make_id(slot, *self.generation.get(slot)?))
    }

    /// Frees every slot (e.g. after a reconnect). Generations are kept, so
    /// late replies to the dropped requests are still rejected.
    pub fn free_all(&mut self) {
        for b in self.busy.iter_mut() {
            *b = false;
        }
        self.in_flight = 0;
    }
}
