//! The tenant summary (M1): how many of a tenant's migrations are in each state, by migration
//! type, read from counters instead of from the rows.
//!
//! Every script that stores or removes a status row (`write_status`, `put_status_unfenced`, the
//! queue's create and merge, the retention trim) moves the tenant's counters in the same atomic
//! step (`lua/lib/status.lua`), so [`Store::tenant_summary`] is one small read for 10 users and
//! for 1,000,000. [`Store::recompute_tenant_summary`] counts the rows themselves, for a
//! consistency check or to see whether a repair is needed.

use std::collections::HashMap;

use mms_core::{MigrationState, MigrationType};
use redis::AsyncCommands;

use crate::error::Malformed;
use crate::progress::LIST_BATCH;
use crate::{Store, StoreError};

/// A tenant's migrations counted by (state, migration type).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantSummary {
    counts: HashMap<(MigrationState, MigrationType), u64>,
}

impl TenantSummary {
    /// Migrations in `state` of type `kind`.
    pub fn get(&self, state: MigrationState, kind: MigrationType) -> u64 {
        self.counts.get(&(state, kind)).copied().unwrap_or(0)
    }

    /// Migrations in `state`, all types together.
    pub fn in_state(&self, state: MigrationState) -> u64 {
        self.counts
            .iter()
            .filter(|((s, _), _)| *s == state)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every migration of the tenant.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The non-zero counts, in no set order.
    pub fn iter(&self) -> impl Iterator<Item = (MigrationState, MigrationType, u64)> + '_ {
        self.counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|((s, k), n)| (*s, *k, *n))
    }

    fn add(&mut self, state: MigrationState, kind: MigrationType, n: u64) {
        if n == 0 {
            return; // no entry for nothing, so that equal summaries compare equal
        }
        *self.counts.entry((state, kind)).or_default() += n;
    }
}

/// The counter field a row counts under: `<State>|<MigrationType>`, the spelling
/// `lua/lib/status.lua` builds from the row's JSON.
fn parse_field(field: &str) -> Option<(MigrationState, MigrationType)> {
    let (state, kind) = field.split_once('|')?;
    Some((state.parse().ok()?, kind.parse().ok()?))
}

impl Store {
    /// The tenant's migrations by state and type, from the counters (M1): one HGETALL of at most
    /// sixteen fields, whatever the number of users or meetings.
    pub async fn tenant_summary(&self, tenant: &str) -> Result<TenantSummary, StoreError> {
        let key = self.keys.summary(tenant);
        let raw: HashMap<String, String> = self.conn.clone().hgetall(&key).await?;
        let mut summary = TenantSummary::default();
        let repair =
            "rebuild it from the rows with Store::rebuild_tenant_summary while the tenant is idle";
        for (field, value) in raw {
            let (state, kind) = parse_field(&field).ok_or_else(|| {
                StoreError::corrupt(
                    &key,
                    repair,
                    Malformed::Value(format!("{field:?} is not <State>|<MigrationType>")),
                )
            })?;
            let n: u64 = value.parse().map_err(|_| {
                StoreError::corrupt(
                    &key,
                    repair,
                    Malformed::Value(format!("{field} is {value:?}, not a count")),
                )
            })?;
            summary.add(state, kind, n);
        }
        Ok(summary)
    }

    /// The tenant's migrations by state and type, counted from the status rows themselves (every
    /// row the tenant's index names, in batches): what [`Store::tenant_summary`] must equal.
    /// Costs a pass over all rows: for checks and repairs, not for serving the summary.
    pub async fn recompute_tenant_summary(
        &self,
        tenant: &str,
    ) -> Result<TenantSummary, StoreError> {
        let index = self.keys.statuses(tenant);
        let mut conn = self.conn.clone();
        let mut summary = TenantSummary::default();
        let mut start = 0isize;
        loop {
            let correlations: Vec<String> = conn
                .zrange(&index, start, start + LIST_BATCH as isize - 1)
                .await?;
            for status in self.statuses_of(tenant, &correlations).await? {
                summary.add(status.state, status.migration_type, 1);
            }
            if correlations.len() < LIST_BATCH {
                return Ok(summary);
            }
            start += LIST_BATCH as isize;
        }
    }

    /// Replace the tenant's counters by a recount of its rows ([`Store::recompute_tenant_summary`])
    /// and return it: for an upgrade from a version without counters, or a repair. Rows written
    /// between the recount and the replacement are missed, so run it while the tenant is idle.
    pub async fn rebuild_tenant_summary(&self, tenant: &str) -> Result<TenantSummary, StoreError> {
        let summary = self.recompute_tenant_summary(tenant).await?;
        let key = self.keys.summary(tenant);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key).ignore();
        for (state, kind, n) in summary.iter() {
            pipe.hset(&key, format!("{state}|{kind}"), n).ignore();
        }
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_fields_parse_as_the_lua_spells_them() {
        assert_eq!(
            parse_field(&format!(
                "{}|{}",
                MigrationState::InProgress,
                MigrationType::SfbToTeams
            )),
            Some((MigrationState::InProgress, MigrationType::SfbToTeams))
        );
        assert_eq!(parse_field("InProgress"), None);
        assert_eq!(parse_field("Done|SfbToTeams"), None);
    }
}
