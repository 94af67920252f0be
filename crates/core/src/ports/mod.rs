//! Ports: what a runtime provides to the handlers. One small trait per capability,
//! and a handler takes only the ones it uses:
//!
//! | port | capability | adapters |
//! |------|------------|----------|
//! | [`AdmitStore`] | open or join a report and store an alert, in one step | memory, SQLite, DynamoDB |
//! | [`ClaimStore`] | claim an attribute for inspection, once per report | memory, SQLite, DynamoDB |
//! | [`FindingStore`] | keep sections and inspection outcomes | memory, SQLite, DynamoDB |
//! | [`ReadStore`] | a report's meta, its content, a published version | memory, SQLite, DynamoDB |
//! | [`PublishStore`] | mark a version published, exactly once | memory, SQLite, DynamoDB |
//! | [`ErrorSink`] | keep a rejected input or a failed step | the stores; on AWS table then topic |
//! | [`ErrorLog`] | read a kept error back | memory, SQLite, DynamoDB |
//! | [`Scheduler`] | run a job later, once per name | memory, SQLite jobs, Step Functions |
//! | [`TaskBus`] / [`ReportBus`] | carry tasks / published reports | memory, SQLite jobs, SNS |
//! | [`BrowseStore`] | the pages' read side: report list (filters, search, keyset paging), versions, arrivals, attribute origins, error list | memory, SQLite |
//! | [`DeliveryLog`] | which version reached which emitter; an emitter's memo per report | memory, SQLite, DynamoDB |
//! | [`AnswerCache`] / [`RateLimiter`] | inspector answers kept across reports, a quota shared by every caller | memory, SQLite, DynamoDB |
//! | [`Clock`] | now | [`SystemClock`], [`ManualClock`] |
//! | [`Inspector`] / [`Reviewer`] / [`Emitter`] | the plugins | `alertresponder-plugins`, Lambda |
//!
//! [`Store`] is every store capability at once, for the runtimes that hold one store.

mod browse;
mod bus;
mod cache;
mod clock;
mod delivery;
mod plugin;
mod store;

pub use browse::{
    AlertArrival, AttributeOrigin, BrowseStore, Cursor, Direction, ErrorCursor, ErrorPage, FoundBy,
    PageRequest, ReportFilter, ReportPage, ReportRow, Search, TimeField, VersionRecord,
    MAX_DETECTORS, MAX_PAGE, MAX_SEARCH_BYTES,
};
pub use bus::{ReportBus, Scheduler, TaskBus};
pub use cache::{rate_window, AnswerCache, RateLimiter};
pub use clock::{Clock, ManualClock, SystemClock};
pub use delivery::{check_memo, DeliveryLog, DeliveryRecord, MAX_MEMO_BYTES};
pub use plugin::{Emitter, Inspection, Inspector, Reviewer, SectionDraft};
pub use store::{
    aggregation_bounds, Admission, AdmitStore, Arrival, Claim, ClaimStore, ErrorLog, ErrorSink,
    FindingStore, PublishMark, PublishStore, ReadStore, ReportCounts, ReportMeta, ReportState,
    Store,
};
