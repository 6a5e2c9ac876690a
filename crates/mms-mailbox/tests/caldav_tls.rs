//! The CalDAV connector over HTTPS against a real Radicale whose certificate a private CA signed,
//! generated in the test (issue 3 item 6: "CalDAV … basic auth; TLS with rustls").

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use common::{search_all, seed_events, uids, ORGANIZER};
use mms_core::config::MailboxConfig;
use mms_core::{Mailbox, MailboxError};
use mms_mailbox::{mailbox_from_config, CalDavMailbox};
use mms_testkit::radicale::Radicale;
use mms_testkit::tls::TestCertificates;

async fn seeded(radicale: &Radicale) {
    radicale.create_calendar(ORGANIZER).await;
    for (name, ics) in seed_events(Utc::now()) {
        radicale.put_event(ORGANIZER, name, &ics).await;
    }
}

fn connector(radicale: &Radicale, ca_file: Option<&Path>) -> CalDavMailbox {
    CalDavMailbox::new(
        &radicale.calendar_url_template(),
        None,
        None,
        Duration::from_secs(10),
        2,
        ca_file,
    )
    .unwrap()
}

/// P2 and P4 over HTTPS: with `mailbox.ca_file` naming the private CA (read through the
/// configuration, as a deployment does), search, get and an If-Match put all work.
#[tokio::test]
async fn search_get_and_put_work_over_https_when_ca_file_names_the_private_ca() {
    let certs = TestCertificates::generate();
    let radicale = Radicale::start_tls(&certs.cert_file, &certs.key_file).await;
    seeded(&radicale).await;
    assert!(radicale.calendar_url_template().starts_with("https://"));
    let cfg = MailboxConfig::Caldav {
        calendar_url: radicale.calendar_url_template(),
        username: None,
        password: None,
        timeout_secs: 10,
        ca_file: Some(certs.ca_file.clone()),
        options: Default::default(),
    };
    let mailbox = mailbox_from_config(&cfg, 2).unwrap();

    let (items, _) = search_all(mailbox.as_ref(), ORGANIZER, Utc::now(), 1)
        .await
        .unwrap();
    assert_eq!(uids(&items), vec!["future", "weekly"]);

    let future = items.iter().find(|i| i.ics.contains("UID:future")).unwrap();
    let fetched = mailbox.get(ORGANIZER, &future.href).await.unwrap();
    assert_eq!(fetched.etag, future.etag);
    let rewritten = future
        .ics
        .replace("SUMMARY:future", "SUMMARY:moved over TLS");
    let new_etag = mailbox
        .put(ORGANIZER, &future.href, &rewritten, &future.etag)
        .await
        .unwrap();
    assert_ne!(new_etag, future.etag);
    let stored = radicale.list_events(ORGANIZER);
    assert!(
        stored
            .iter()
            .any(|(name, ics)| name == "future.ics" && ics.contains("SUMMARY:moved over TLS")),
        "{stored:?}"
    );
}

/// Without the CA (or with an unrelated one) the handshake fails, and the error names the
/// certificate and the key that fixes it; it is transient so that the migration waits for the
/// fix instead of failing.
#[tokio::test]
async fn an_untrusted_certificate_is_unavailable_and_says_to_set_ca_file() {
    let certs = TestCertificates::generate();
    let radicale = Radicale::start_tls(&certs.cert_file, &certs.key_file).await;
    seeded(&radicale).await;
    let unrelated = TestCertificates::generate();
    for ca_file in [None, Some(unrelated.ca_file.as_path())] {
        let err = connector(&radicale, ca_file)
            .search(ORGANIZER, Utc::now(), None, 10)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, MailboxError::Unavailable(m)
                if m.contains("certificate is not trusted") && m.contains("mailbox.ca_file")),
            "ca_file {ca_file:?}: {err}"
        );
        assert!(!err.is_permanent());
    }
}

/// Basic auth over TLS: the right password reads the calendar, a wrong one is refused as
/// Unauthorized, and neither password appears in the error.
#[tokio::test]
async fn basic_auth_over_https_accepts_the_right_password_and_refuses_a_wrong_one() {
    let certs = TestCertificates::generate();
    let radicale = Radicale::start_tls_with_users(
        &certs.cert_file,
        &certs.key_file,
        &[(ORGANIZER, "right-secret")],
    )
    .await;
    seeded(&radicale).await;
    let with_password = |password: &str| {
        CalDavMailbox::new(
            &radicale.calendar_url_template(),
            Some(ORGANIZER.into()),
            Some(password.into()),
            Duration::from_secs(10),
            2,
            Some(&certs.ca_file),
        )
        .unwrap()
    };
    let (items, _) = search_all(&with_password("right-secret"), ORGANIZER, Utc::now(), 10)
        .await
        .unwrap();
    assert_eq!(uids(&items), vec!["future", "weekly"]);

    let err = with_password("wrong-secret")
        .search(ORGANIZER, Utc::now(), None, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MailboxError::Unauthorized(_)) && err.is_permanent(),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

/// An https:// URL pointing at a plain-HTTP server fails in the handshake with a hint.
#[tokio::test]
async fn https_to_a_plain_http_server_says_the_server_does_not_speak_tls() {
    let radicale = Radicale::start().await;
    radicale.create_calendar(ORGANIZER).await;
    let url = radicale
        .calendar_url_template()
        .replacen("http://", "https://", 1);
    let mailbox = CalDavMailbox::new(&url, None, None, Duration::from_secs(10), 2, None).unwrap();
    let err = mailbox
        .search(ORGANIZER, Utc::now(), None, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MailboxError::Unavailable(m) if m.contains("speaks TLS")),
        "{err}"
    );
}

#[test]
fn a_bad_ca_file_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let new = |url: &str, ca_file: &Path| {
        CalDavMailbox::new(url, None, None, Duration::from_secs(5), 2, Some(ca_file))
            .err()
            .unwrap()
            .to_string()
    };
    let https = "https://caldav.example.com/{user}/calendar/";

    let missing = dir.path().join("missing.pem");
    let err = new(https, &missing);
    assert!(
        err.contains("mailbox.ca_file") && err.contains("missing.pem"),
        "{err}"
    );

    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let err = new(https, &not_pem);
    assert!(
        err.contains("mailbox.ca_file") && err.contains("BEGIN CERTIFICATE"),
        "{err}"
    );

    let certs = TestCertificates::generate();
    let err = new("http://caldav.example.com/{user}/calendar/", &certs.ca_file);
    assert!(
        err.contains("mailbox.ca_file") && err.contains("https"),
        "{err}"
    );
    assert!(CalDavMailbox::new(
        https,
        None,
        None,
        Duration::from_secs(5),
        2,
        Some(&certs.ca_file)
    )
    .is_ok());
}
