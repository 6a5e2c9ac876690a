//! Sorted listings of a calendar, cached between the pages of one search.
//!
//! Both connectors page by name: a page is the `page_size` names that sort after the cursor (the
//! last name of the previous page). Listing a calendar is the expensive step (a REPORT over the
//! whole calendar, or reading a 100,000-entry directory), so the listing taken for the first page
//! is kept for the following ones and dropped after the last. A page that finds no cached listing
//! (the cache is small, or another worker resumed the search) lists again and continues after the
//! cursor, which stays correct because names are compared, not positions.
//!
//! Memory: a cached listing holds names only (never bodies), one entry per resource.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Searches in flight per connector whose listing is kept; older ones are evicted (and re-list).
const CACHED_SEARCHES: usize = 32;

pub(crate) struct ListingCache<V> {
    entries: Mutex<VecDeque<(String, Arc<V>)>>,
}

impl<V> Default for ListingCache<V> {
    fn default() -> Self {
        ListingCache {
            entries: Mutex::new(VecDeque::new()),
        }
    }
}

impl<V> ListingCache<V> {
    pub(crate) fn get(&self, key: &str) -> Option<Arc<V>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    pub(crate) fn insert(&self, key: String, value: Arc<V>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|(k, _)| *k != key);
        if entries.len() >= CACHED_SEARCHES {
            entries.pop_front();
        }
        entries.push_back((key, value));
    }

    pub(crate) fn remove(&self, key: &str) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|(k, _)| k != key);
    }
}

/// The entries of the page after `cursor` in `entries` (sorted by `name`), and whether more
/// follow.
pub(crate) fn page_after<'a, T>(
    entries: &'a [T],
    name: impl Fn(&T) -> &str,
    cursor: Option<&str>,
    page_size: usize,
) -> (&'a [T], bool) {
    let start = cursor.map_or(0, |last| entries.partition_point(|e| name(e) <= last));
    let end = start.saturating_add(page_size.max(1)).min(entries.len());
    (&entries[start..end], end < entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages_follow_the_cursor_even_when_it_was_deleted() {
        let all = names(&["a", "b", "d", "e"]);
        assert_eq!(
            page_after(&all, |n| n.as_str(), None, 2),
            (&all[0..2], true)
        );
        assert_eq!(
            page_after(&all, |n| n.as_str(), Some("b"), 2),
            (&all[2..4], false)
        );
        // "c" was the last name served, then deleted: the page still starts after it.
        assert_eq!(
            page_after(&all, |n| n.as_str(), Some("c"), 1),
            (&all[2..3], true)
        );
        assert_eq!(
            page_after(&all, |n| n.as_str(), Some("e"), 5),
            (&all[4..4], false)
        );
        assert_eq!(
            page_after(&all, |n| n.as_str(), None, 0).0.len(),
            1,
            "a page size of 0 is read as 1"
        );
    }

    #[test]
    fn the_cache_evicts_the_oldest_search() {
        let cache = ListingCache::default();
        for i in 0..=CACHED_SEARCHES {
            cache.insert(i.to_string(), Arc::new(i));
        }
        assert!(cache.get("0").is_none());
        assert_eq!(
            cache.get(&CACHED_SEARCHES.to_string()).as_deref(),
            Some(&CACHED_SEARCHES)
        );
        cache.remove("1");
        assert!(cache.get("1").is_none());
    }
}
