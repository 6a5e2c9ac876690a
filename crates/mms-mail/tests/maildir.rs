//! The Maildir outbox: atomic delivery into `new/`, and one file per Message-ID.

use mms_core::config::MailConfig;
use mms_core::{OutgoingMessage, SendError, Sender};
use mms_mail::{sender_from_config, MaildirSender};

fn message(id: &str, body: &str) -> OutgoingMessage {
    OutgoingMessage::from_raw(
        id,
        "mms@example.com",
        vec!["bob@example.com".into()],
        format!("Message-ID: <{id}>\r\nSubject: x\r\n\r\n{body}\r\n").into_bytes(),
    )
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn each_message_lands_in_new_once() {
    let root = tempfile::tempdir().unwrap();
    let outbox = sender_from_config(&MailConfig::Maildir {
        root: root.path().to_path_buf(),
        updates: Default::default(),
    })
    .unwrap();
    let first = message("a@mms", "first");
    outbox.send(&first).await.unwrap();
    outbox.send(&message("b@mms", "second")).await.unwrap();
    // A retried migration sends the same update again: still one file.
    outbox.send(&first).await.unwrap();

    let new = files(&root.path().join("new"));
    assert_eq!(new.len(), 2, "{new:?}");
    let name = MaildirSender::file_name("a@mms");
    assert_eq!(
        std::fs::read(root.path().join("new").join(&name)).unwrap(),
        first.raw()
    );
    assert!(
        files(&root.path().join("tmp")).is_empty(),
        "temp files left behind"
    );
}

#[tokio::test]
async fn a_message_a_reader_moved_to_cur_is_not_written_again() {
    let root = tempfile::tempdir().unwrap();
    let outbox = MaildirSender::new(root.path());
    let msg = message("c@mms", "body");
    outbox.send(&msg).await.unwrap();
    let name = MaildirSender::file_name("c@mms");
    std::fs::rename(
        root.path().join("new").join(&name),
        root.path().join("cur").join(format!("{name}:2,S")),
    )
    .unwrap();
    outbox.send(&msg).await.unwrap();
    assert!(files(&root.path().join("new")).is_empty());
    assert_eq!(files(&root.path().join("cur")).len(), 1);
}

#[tokio::test]
async fn an_unwritable_outbox_is_a_transient_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let blocker = root.path().join("outbox");
    std::fs::write(&blocker, "a file where the Maildir should be").unwrap();
    let err = MaildirSender::new(&blocker)
        .send(&message("d@mms", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Transient(m) if m.contains("outbox")),
        "{err:?}"
    );
}
