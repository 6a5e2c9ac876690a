//! The Redis key layout, in one place.
//!
//! Every key that belongs to a tenant carries the hash tag `{<ns>:<tenant>}`, so all of a tenant's
//! keys (its stream, delayed set, users' leases, statuses, journals, directory records) live in one
//! Redis Cluster slot. That is what lets each Lua script touch a lease, a status and a stream in one
//! atomic step on Redis Cluster. The price: one tenant cannot be spread over several shards; tenants
//! are. Keys shared by all tenants (the tenant index, API tokens) carry `{<ns>}` and are only used
//! by single-key commands.
//!
//! Tenant ids and user names are percent-free lower-case strings validated by the control plane;
//! `{` and `}` are refused there, so they cannot break the hash tag.

/// Builds the keys of one deployment (one namespace).
#[derive(Debug, Clone)]
pub struct Keys {
    ns: String,
}

impl Keys {
    pub fn new(ns: impl Into<String>) -> Self {
        Keys { ns: ns.into() }
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    fn t(&self, tenant: &str, rest: &str) -> String {
        format!("{{{}:{}}}:{}", self.ns, tenant, rest)
    }

    // ---- global (single-key use only) ----
    /// SET of tenant ids that have ever had a record or a request.
    pub fn tenants(&self) -> String {
        format!("{{{}}}:tenants", self.ns)
    }
    /// SET of tenant ids with work: something ready or pending on the stream, or waiting in the
    /// delayed set. The poll round walks this, not [`Keys::tenants`], so its cost follows the
    /// tenants with work. Added to before and after a tenant gets work, removed (and re-checked)
    /// when its stream and delayed set are empty (`queue.rs`).
    pub fn active_tenants(&self) -> String {
        format!("{{{}}}:active", self.ns)
    }
    /// STREAM (capped) of wake-ups: one entry per enqueue, naming the tenant. Idle workers block
    /// on it (XREAD BLOCK), so a request starts at once instead of on the next poll round; one
    /// key, so it works on Redis Cluster where one XREADGROUP cannot span the tenants' slots.
    pub fn wake(&self) -> String {
        format!("{{{}}}:wake", self.ns)
    }
    /// SET of `<tenant>:<job id>` of the jobs not yet finished: what a job runner picks up after
    /// a restart (`jobs.rs`). Single-key use only, like the other global keys.
    pub fn open_jobs(&self) -> String {
        format!("{{{}}}:jobs:open", self.ns)
    }
    /// HASH sha256(token) -> JSON role.
    pub fn tokens(&self) -> String {
        format!("{{{}}}:tokens", self.ns)
    }
    /// HASH mail domain -> the tenant that owns it ([`crate::domains`]).
    pub fn domains(&self) -> String {
        format!("{{{}}}:domains", self.ns)
    }

    // ---- queue ----
    /// STREAM of ready migration requests of a tenant (consumer group [`GROUP`]).
    pub fn stream(&self, tenant: &str) -> String {
        self.t(tenant, "stream")
    }
    /// ZSET correlation id -> due time (ms): coalescing holds and delayed retries.
    pub fn delayed(&self, tenant: &str) -> String {
        self.t(tenant, "delayed")
    }
    /// HASH correlation id -> rmp-serde request, for requests waiting in `delayed` or the stream.
    pub fn requests(&self, tenant: &str) -> String {
        self.t(tenant, "requests")
    }
    /// STRING: correlation id of the user's request that is queued and not yet started (merge target).
    pub fn queued(&self, tenant: &str, user: &str) -> String {
        self.t(tenant, &format!("queued:{user}"))
    }

    /// LIST of JSON records of stream entries that could not be decoded (newest first), acked
    /// off the stream so they do not block it, kept here for an admin to inspect.
    pub fn dead_letters(&self, tenant: &str) -> String {
        self.t(tenant, "dead")
    }

    // ---- leases and fencing ----
    /// STRING `<token>:<owner>`, PX ttl: who may touch the user's mailbox.
    pub fn lease(&self, tenant: &str, user: &str) -> String {
        self.t(tenant, &format!("lease:{user}"))
    }
    /// STRING counter: the fencing token source, never reset.
    pub fn fence(&self, tenant: &str, user: &str) -> String {
        self.t(tenant, &format!("fence:{user}"))
    }

    // ---- status, journal, history ----
    /// STRING JSON [`mms_core::MigrationStatus`] of one migration.
    pub fn status(&self, tenant: &str, correlation: &str) -> String {
        self.t(tenant, &format!("status:{correlation}"))
    }
    /// ZSET correlation id -> create time (ms): every migration of the tenant.
    pub fn statuses(&self, tenant: &str) -> String {
        self.t(tenant, "statuses")
    }
    /// ZSET correlation id -> create time (ms): the migrations of one user.
    pub fn user_migrations(&self, tenant: &str, user: &str) -> String {
        self.t(tenant, &format!("migrations:{user}"))
    }
    /// HASH meeting key -> stage record, per migration (resume skips what is done).
    pub fn journal(&self, tenant: &str, correlation: &str) -> String {
        self.t(tenant, &format!("journal:{correlation}"))
    }
    /// HASH meeting key -> JSON [`mms_core::MeetingPreImage`], per migration: what it replaced
    /// in each meeting it rewrote, for an undo (written with the journal, kept as long).
    pub fn pre_images(&self, tenant: &str, correlation: &str) -> String {
        self.t(tenant, &format!("preimage:{correlation}"))
    }
    /// HASH message-id -> time: every update accepted by SMTP for the user (never sent twice).
    pub fn sent(&self, tenant: &str, user: &str) -> String {
        self.t(tenant, &format!("sent:{user}"))
    }
    /// LIST of JSON history events of a user (transaction history), newest last.
    pub fn history(&self, tenant: &str, user: &str) -> String {
        self.t(tenant, &format!("history:{user}"))
    }
    /// HASH stage -> count of the journal entries of one migration (kept by the journal scripts).
    pub fn counts(&self, tenant: &str, correlation: &str) -> String {
        self.t(tenant, &format!("counts:{correlation}"))
    }
    /// HASH meeting href -> JSON pending update: meetings saved whose update has not reached
    /// every attendee yet, across the user's migrations (issue 7.1).
    pub fn pending(&self, tenant: &str, user: &str) -> String {
        self.t(tenant, &format!("pending:{user}"))
    }
    /// HASH `<State>|<MigrationType>` -> count of the tenant's status rows (M1), kept by every
    /// script that stores or removes a row. `lua/lib/status.lua` derives it from a status key
    /// for scripts that do not pass it: keep the two spellings equal.
    pub fn summary(&self, tenant: &str) -> String {
        self.t(tenant, "summary")
    }

    // ---- jobs (tenant-wide fan-outs run in the background, `jobs.rs`) ----
    /// HASH of one job: its spec, state, cursor, counters, times and the runner's claim.
    pub fn job(&self, tenant: &str, job: &str) -> String {
        self.t(tenant, &format!("job:{job}"))
    }
    /// HASH user -> result: the users a job has carried out, so a batch re-run after a crash
    /// counts each user once.
    pub fn job_outcomes(&self, tenant: &str, job: &str) -> String {
        self.t(tenant, &format!("job:{job}:outcomes"))
    }
    /// ZSET job id -> create time (ms): every job of the tenant, for the paged list.
    pub fn jobs(&self, tenant: &str) -> String {
        self.t(tenant, "jobs")
    }

    // ---- directory ----
    /// STRING JSON [`mms_core::TenantSettings`].
    pub fn settings(&self, tenant: &str) -> String {
        self.t(tenant, "settings")
    }
    /// HASH upn -> JSON [`mms_core::UserProfile`].
    pub fn users(&self, tenant: &str) -> String {
        self.t(tenant, "users")
    }
    /// HASH sip address -> upn.
    pub fn sip_index(&self, tenant: &str) -> String {
        self.t(tenant, "sip")
    }
    /// HASH user id -> upn.
    pub fn user_id_index(&self, tenant: &str) -> String {
        self.t(tenant, "userids")
    }
    /// HASH bridge id -> JSON [`mms_core::Bridge`].
    pub fn bridges(&self, tenant: &str) -> String {
        self.t(tenant, "bridges")
    }
}

/// Consumer group every worker joins on every tenant stream.
pub const GROUP: &str = "workers";

#[cfg(test)]
mod tests {
    use super::*;

    fn slot_tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = key[open..].find('}').unwrap() + open;
        &key[open + 1..close]
    }

    #[test]
    fn every_tenant_key_shares_the_tenant_hash_tag() {
        let k = Keys::new("mms");
        let keys = [
            k.stream("acme"),
            k.delayed("acme"),
            k.requests("acme"),
            k.queued("acme", "u@x"),
            k.dead_letters("acme"),
            k.lease("acme", "u@x"),
            k.fence("acme", "u@x"),
            k.status("acme", "c"),
            k.statuses("acme"),
            k.user_migrations("acme", "u@x"),
            k.journal("acme", "c"),
            k.pre_images("acme", "c"),
            k.sent("acme", "u@x"),
            k.history("acme", "u@x"),
            k.counts("acme", "c"),
            k.pending("acme", "u@x"),
            k.summary("acme"),
            k.settings("acme"),
            k.users("acme"),
            k.sip_index("acme"),
            k.user_id_index("acme"),
            k.bridges("acme"),
            k.job("acme", "j"),
            k.job_outcomes("acme", "j"),
            k.jobs("acme"),
        ];
        for key in &keys {
            assert_eq!(slot_tag(key), "mms:acme", "{key}");
        }
        assert_eq!(slot_tag(&k.tenants()), "mms");
        assert_eq!(slot_tag(&k.active_tenants()), "mms");
        assert_eq!(slot_tag(&k.wake()), "mms");
        assert_eq!(slot_tag(&k.open_jobs()), "mms");
    }
}
