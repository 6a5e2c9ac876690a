//! The vocabulary of MMS: what a migration request, a status row, a user record and a set of
//! meeting coordinates are, and the traits at the seams between the engine and the outside world.
//!
//! Every other crate depends on this one and on nothing above it, so it holds no I/O: the
//! `Mailbox`, `Sender` and `MeetingService` traits are implemented by `mms-mailbox`, `mms-mail`
//! and [`meeting_service::TemplateMeetingService`] respectively, and the Redis-backed directory lives in
//! `mms-store`.

pub mod config;
pub mod coordinates;
pub mod directory;
pub mod history;
pub mod mailbox;
pub mod meeting_service;
pub mod model;
pub mod preview;
pub mod send;
pub mod undo;

pub use coordinates::{Coordinates, DialInNumber, OnlineMeetingKind};
pub use directory::{
    AudioConferencing, AudioProvider, Bridge, MailboxLocation, TeamsUpgradeMode, TenantSettings,
    UserHome, UserProfile,
};
pub use history::HistoryEventKind;
pub use mailbox::{ItemProblem, Mailbox, MailboxError, MailboxItem, SearchPage, UnreadableItem};
pub use meeting_service::{MeetingService, MeetingServiceError, MintRequest};
pub use model::{
    MeetingOutcome, MeetingOutcomeKind, MigrationRequest, MigrationState, MigrationStatus,
    MigrationType, SourceMeetingType, TargetMeetingType, Trigger,
};
pub use send::{OutgoingMessage, RecipientRefusal, SendError, SendReport, Sender};
pub use undo::{BodyPreImage, BodyProperty, EventPreImage, MeetingPreImage, PropertyPreImage};
