//! The what-if seam (`mmsctl start-meeting-migration --what-if`, M5). The contract is defined in
//! `mms_core::preview` so that the worker can implement it without depending on the API; the
//! route is `migrations:preview` in [`crate::routes::migrations`].

pub use mms_core::preview::{
    Preview, PreviewError, PreviewItem, PreviewOutcome, Previewer, PREVIEW_ITEM_CAP,
};
