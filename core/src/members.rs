//! The bounded, named member list that each export ([`SloExport`](crate::SloExport),
//! [`MemoryExport`](crate::MemoryExport), [`BreakerExport`](crate::BreakerExport)) keeps of
//! the `&'static` structures it reports on.
//!
//! Members are added rarely (at start-up) and read before each scrape, so the list sits in
//! a critical section: adding checks the name and the capacity in one step, and reads copy
//! one reference out at a time.

use core::cell::RefCell;
use critical_section::Mutex;

/// What a list needs of its members.
pub(crate) trait Member: Sync {
    /// The member's unique name (the export's label value).
    fn name(&self) -> &'static str;
    /// Bytes the member occupies.
    fn footprint(&self) -> usize;
}

/// Why [`Members::push`] refused a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A member of the same name is in the list.
    Duplicate,
    /// The list holds `K` members.
    Full,
}

/// At most `K` members with distinct names, in the order added.
pub(crate) struct Members<T: ?Sized + 'static, const K: usize>(Mutex<RefCell<heapless::Vec<&'static T, K>>>);

impl<T: ?Sized + Member + 'static, const K: usize> Members<T, K> {
    pub(crate) const fn new() -> Self {
        Self(Mutex::new(RefCell::new(heapless::Vec::new())))
    }

    /// Adds `member` unless the list is full or holds its name.
    pub(crate) fn push(&self, member: &'static T) -> Result<(), Refused> {
        critical_section::with(|cs| {
            let mut members = self.0.borrow_ref_mut(cs);
            if members.iter().any(|m| m.name() == member.name()) {
                return Err(Refused::Duplicate);
            }
            members.push(member).map_err(|_| Refused::Full)
        })
    }

    pub(crate) fn len(&self) -> usize {
        critical_section::with(|cs| self.0.borrow_ref(cs).len())
    }

    pub(crate) fn get(&self, index: usize) -> Option<&'static T> {
        critical_section::with(|cs| self.0.borrow_ref(cs).get(index).copied())
    }

    /// The members in order, each read in its own critical section.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'static T> + '_ {
        (0..K).map_while(|index| self.get(index))
    }

    /// Bytes the members occupy.
    pub(crate) fn footprint(&self) -> usize {
        self.iter().map(|member| member.footprint()).sum()
    }
}
