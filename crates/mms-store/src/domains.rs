//! Which tenant owns which mail domain: the boundary that keeps one tenant out of another's
//! mailboxes.
//!
//! Mailboxes are found by the organizer's UPN, and a UPN is only a string a tenant admin types. So
//! ownership is established by the operator, not by the tenant: the operator assigns each tenant
//! its verified mail domains, a domain belongs to at most one tenant (claims are all-or-none in
//! one script on one key), and a user record can only name a UPN in one of its tenant's domains.
//! The control plane refuses other UPNs at the door, and the worker checks again before it opens a
//! mailbox ([`Store::owns_upn`]), so a record that got in some other way (an older version, a
//! hand-edited Redis) still cannot reach another tenant's mailbox.
//!
//! The domains hash is one global key (`{ns}:domains`), used only by single-key commands and
//! scripts, so it works the same on Redis Cluster.

use std::sync::LazyLock;

use redis::{AsyncCommands, Script};

use crate::script::lua_script;
use crate::{Store, StoreError};

static CLAIM: LazyLock<Script> = lua_script!("domains/claim.lua");
static RELEASE: LazyLock<Script> = lua_script!("domains/release.lua");

/// A mail domain, lower-cased and checked: letters, digits, `-` and `.`, no empty label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailDomain(String);

impl MailDomain {
    pub fn parse(text: &str) -> Result<MailDomain, StoreError> {
        let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let valid = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(MailDomain(domain))
        } else {
            Err(StoreError::Invalid(format!(
                "{text:?} is not a mail domain: give a host name such as contoso.com (letters, digits, '-' and '.')"
            )))
        }
    }

    /// The domain of a UPN (`user@domain`); `None` when it has no `@` or an invalid domain.
    pub fn of_upn(upn: &str) -> Option<MailDomain> {
        let (_, domain) = upn.rsplit_once('@')?;
        MailDomain::parse(domain).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MailDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a claim was refused: the domain already belongs to another tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainTaken {
    pub domain: String,
    pub owner: String,
}

impl Store {
    /// Give `domains` to `tenant`, all or none: `Err(DomainTaken)` names the first domain another
    /// tenant owns, and then nothing is written. Claiming a domain the tenant owns already is a no-op.
    pub async fn claim_domains(
        &self,
        tenant: &str,
        domains: &[MailDomain],
    ) -> Result<Result<(), DomainTaken>, StoreError> {
        if domains.is_empty() {
            return Ok(Ok(()));
        }
        let mut invocation = CLAIM.key(self.keys.domains());
        invocation.arg(tenant);
        for domain in domains {
            invocation.arg(domain.as_str());
        }
        let reply: Vec<redis::Value> = invocation.invoke_async(&mut self.conn.clone()).await?;
        let text = |v: &redis::Value| -> String {
            redis::from_redis_value::<String>(v).unwrap_or_default()
        };
        match reply.as_slice() {
            [redis::Value::Int(0)] => Ok(Ok(())),
            [_, domain, owner] => Ok(Err(DomainTaken {
                domain: text(domain),
                owner: text(owner),
            })),
            other => Err(StoreError::Corrupt(format!(
                "claim_domains script answered {other:?}"
            ))),
        }
    }

    /// Take `domains` away from `tenant` (those it owns); returns how many it gave up.
    pub async fn release_domains(
        &self,
        tenant: &str,
        domains: &[MailDomain],
    ) -> Result<usize, StoreError> {
        if domains.is_empty() {
            return Ok(0);
        }
        let mut invocation = RELEASE.key(self.keys.domains());
        invocation.arg(tenant);
        for domain in domains {
            invocation.arg(domain.as_str());
        }
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    /// The tenant owning `domain`, if any.
    pub async fn domain_owner(&self, domain: &MailDomain) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .clone()
            .hget(self.keys.domains(), domain.as_str())
            .await?)
    }

    /// The domains `tenant` owns, sorted.
    pub async fn tenant_domains(&self, tenant: &str) -> Result<Vec<MailDomain>, StoreError> {
        let all: Vec<(String, String)> = self.conn.clone().hgetall(self.keys.domains()).await?;
        let mut owned: Vec<MailDomain> = all
            .into_iter()
            .filter(|(_, owner)| owner == tenant)
            .map(|(domain, _)| MailDomain(domain))
            .collect();
        owned.sort();
        Ok(owned)
    }

    /// Whether `tenant` owns the domain of `upn`: what the control plane checks before it stores a
    /// user and the worker before it opens a mailbox.
    pub async fn owns_upn(&self, tenant: &str, upn: &str) -> Result<bool, StoreError> {
        let Some(domain) = MailDomain::of_upn(upn) else {
            return Ok(false);
        };
        Ok(self.domain_owner(&domain).await?.as_deref() == Some(tenant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_lower_cased_and_checked() {
        assert_eq!(
            MailDomain::parse("Contoso.COM.").unwrap().as_str(),
            "contoso.com"
        );
        for bad in ["", "a..b", "-a.com", "a b.com", "x@y.com", "ünï.com"] {
            assert!(MailDomain::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            MailDomain::of_upn("Ann@Fabrikam.example").unwrap().as_str(),
            "fabrikam.example"
        );
        assert_eq!(MailDomain::of_upn("no-at-sign"), None);
    }
}
