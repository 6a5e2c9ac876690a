//! Checks on the names that end up inside Redis keys and on the `Identity` parameter.
//!
//! Tenant ids and UPNs become parts of keys whose hash tag is `{ns:tenant}`; a `{` or `}` in them
//! would move a tenant's keys to another Cluster slot, so such names are refused here, at the edge.

use crate::error::ApiError;

/// Longest tenant id accepted.
const TENANT_MAX: usize = 64;
/// Longest UPN accepted (the vendor's limit on userPrincipalName).
const UPN_MAX: usize = 113;

/// A tenant id: 1–64 characters of `a-z 0-9 - _ .`, lower-case.
pub fn tenant_id(raw: &str) -> Result<String, ApiError> {
    let ok = !raw.is_empty()
        && raw.len() <= TENANT_MAX
        && raw.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        });
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::bad_request(
            "malformed_tenant",
            format!("tenant id {raw:?} is not valid: use 1 to {TENANT_MAX} characters among a-z, 0-9, '-', '_' and '.'"),
        ))
    }
}

/// Why `raw` is not an address of the form `local@domain`, or `None` when it is one.
fn address_problem(raw: &str) -> Option<&'static str> {
    if raw.is_empty() || raw.len() > UPN_MAX {
        return Some("it must be 1 to 113 characters long");
    }
    if raw.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '{' | '}' | '/' | '"' | '<' | '>')
    }) {
        return Some("it must not contain spaces, control characters or any of { } / \" < >");
    }
    let Some((local, domain)) = raw.split_once('@') else {
        return Some("it must have the form name@domain");
    };
    if local.is_empty()
        || domain.contains('@')
        || domain.split('.').any(str::is_empty)
        || !domain.contains('.')
    {
        return Some("it must have the form name@domain.tld with exactly one '@'");
    }
    None
}

/// A user principal name, lower-cased.
pub fn upn(raw: &str) -> Result<String, ApiError> {
    let lower = raw.trim().to_lowercase();
    match address_problem(&lower) {
        None => Ok(lower),
        Some(why) => Err(ApiError::bad_request(
            "malformed_upn",
            format!("UPN {raw:?} is not valid: {why}"),
        )),
    }
}

/// A SIP address without its `sip:` scheme, lower-cased.
pub fn sip_address(raw: &str) -> Result<String, ApiError> {
    let trimmed = raw.trim();
    let bare = trimmed
        .strip_prefix("sip:")
        .or_else(|| trimmed.strip_prefix("SIP:"))
        .unwrap_or(trimmed)
        .to_lowercase();
    match address_problem(&bare) {
        None => Ok(bare),
        Some(why) => Err(ApiError::bad_request(
            "malformed_sip_address",
            format!("SIP address {raw:?} is not valid: {why}"),
        )),
    }
}

/// How an `Identity` names a user: the vendor accepts a UPN or a SIP address (`sip:` optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `name@domain`: tried as a UPN, then as a SIP address.
    Address(String),
    /// `sip:name@domain`: a SIP address only.
    Sip(String),
}

/// Parse an `Identity` parameter.
pub fn identity(raw: &str) -> Result<Identity, ApiError> {
    let trimmed = raw.trim();
    let (is_sip, bare) = match trimmed.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("sip:") => (true, &trimmed[4..]),
        _ => (false, trimmed),
    };
    let lower = bare.to_lowercase();
    match address_problem(&lower) {
        None if is_sip => Ok(Identity::Sip(lower)),
        None => Ok(Identity::Address(lower)),
        Some(why) => Err(ApiError::bad_request(
            "malformed_identity",
            format!("Identity {raw:?} is not a UPN or SIP address: {why} (e.g. ada@contoso.com or sip:ada@contoso.com)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_refuse_hash_tag_braces_and_upper_case() {
        assert_eq!(tenant_id("contoso-1").unwrap(), "contoso-1");
        for bad in ["", "Contoso", "a{b}", "a b", &"x".repeat(65)] {
            assert_eq!(
                tenant_id(bad).unwrap_err().code,
                "malformed_tenant",
                "{bad}"
            );
        }
    }

    #[test]
    fn identities_accept_upn_and_sip_forms() {
        assert_eq!(
            identity("Ada@Contoso.com").unwrap(),
            Identity::Address("ada@contoso.com".into())
        );
        assert_eq!(
            identity("SIP:ada@contoso.com").unwrap(),
            Identity::Sip("ada@contoso.com".into())
        );
        for bad in [
            "ada",
            "@contoso.com",
            "ada@",
            "ada@contoso",
            "a@b@c.com",
            "ada@{x}.com",
            "ada @x.com",
        ] {
            assert_eq!(
                identity(bad).unwrap_err().code,
                "malformed_identity",
                "{bad}"
            );
        }
    }

    #[test]
    fn upns_are_lower_cased() {
        assert_eq!(upn(" Bob@Fabrikam.COM ").unwrap(), "bob@fabrikam.com");
        assert_eq!(upn("bob").unwrap_err().code, "malformed_upn");
    }
}
