//! The OpenAPI 3 document of `serve`'s HTTP API, served at `GET /v1/openapi.json`.
//!
//! The operations come from the handlers themselves (`#[utoipa::path]` in
//! [`crate::serve`], registered by the same `routes!` list that builds the router),
//! so a route cannot be added without its entry. The schemas are here, as mirrors of
//! the wire shapes: core's types stay free of HTTP and OpenAPI. They are not used to
//! parse anything; `crates/cli/tests/openapi.rs` keeps them true by validating real
//! answers of the router against them (the answers' schemas are closed, so a field
//! added to a report, a summary or an error record fails that test until it is
//! added here).
//!
//! What the request schemas say is what `alertresponder_core::validate` checks, so
//! that a client (or schemathesis, `make test-api`) can tell a valid alert from one
//! that gets a 400 naming its field.

use alertresponder_core::validate::MAX_ID_LEN;
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToSchema};

/// The name of the bearer-token security scheme the `/v1` operations require.
pub const BEARER: &str = "bearer";
/// The name of the pages' session-cookie scheme, which the `/v1` reads also take.
pub const SESSION: &str = "session";

/// The document's frame: info, tags, the security scheme. The paths and their
/// schemas are added by the router (`serve::openapi_document`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "AlertResponder",
        description = "Security alerts in, reports out: aggregate, inspect, review, emit. \
            With a token configured, every /v1 operation but this document needs \
            `Authorization: Bearer TOKEN`. Every 4xx answer is JSON with `error` (what is \
            wrong) and `field` (the JSON path in the body, or the parameter or header at fault)."
    ),
    modifiers(&BearerToken),
    tags(
        (name = "alerts", description = "Alerts and events in"),
        (name = "reports", description = "Reports and error records out"),
        (name = "service", description = "Health and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the bearer-token security scheme.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The API token (`--token`, ALERTRESPONDER_API_TOKEN or `api_token`); \
                         required beyond loopback",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::web::auth::COOKIE,
                "The session a browser gets by signing in to the pages with the token; \
                 the reads (GET) take it too",
            ))),
        );
    }
}

// ------------------------------------------------------------------ requests

/// One alert (DeepAlert v1 JSON). Alerts with the same `detector`, `rule_id` and
/// `alert_key` join one report within the aggregation window. At most 256 KiB of
/// JSON; fields not listed here are ignored.
#[derive(ToSchema)]
pub struct Alert {
    /// The system that raised it (`guardduty`, `suricata` …); not blank, at most 1024 bytes.
    #[schema(min_length = 1, max_length = 1024, pattern = r"\S")]
    pub detector: String,
    /// Stable identifier of the rule; not blank, at most 1024 bytes.
    #[schema(min_length = 1, max_length = 1024, pattern = r"\S")]
    pub rule_id: String,
    /// Aggregation key; not blank, at most 1024 bytes.
    #[schema(min_length = 1, max_length = 1024, pattern = r"\S")]
    pub alert_key: String,
    /// Human-readable name of the rule.
    pub rule_name: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// When the detector saw it (RFC 3339); the time it arrived when absent.
    #[schema(format = DateTime)]
    pub timestamp: Option<String>,
    /// Entities named by the alert, at most 1024.
    #[schema(max_items = 1024)]
    pub attributes: Option<Vec<Attribute>>,
    /// The detector's own payload, kept as is.
    pub body: Option<serde_json::Value>,
}

/// An entity named by an alert or found by an inspector.
#[derive(ToSchema)]
pub struct Attribute {
    /// `ipaddr`, `domain`, `username`, `filehashvalue`, `json`, `url` or another type;
    /// not blank, at most 1024 bytes.
    #[schema(min_length = 1, max_length = 1024, pattern = r"\S")]
    #[serde(rename = "type")]
    pub attr_type: String,
    /// The entity itself.
    pub value: String,
    /// What the value is in the alert (`source address`, `login user` …).
    pub key: Option<String>,
    /// Its roles (`remote`, `local`, `subject` …), each at most 1024 bytes.
    pub context: Option<Context>,
    /// When it was seen (RFC 3339).
    #[schema(format = DateTime)]
    pub timestamp: Option<String>,
}

/// An attribute's roles: a list, or one role as a string (as some DeepAlert
/// producers send); each at most 1024 bytes.
pub struct Context;

impl PartialSchema for Context {
    fn schema() -> RefOr<Schema> {
        let role = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_ID_LEN))
        };
        OneOfBuilder::new()
            .item(role())
            .item(ArrayBuilder::new().items(role()))
            .description(Some("One role, or a list of roles"))
            .into()
    }
}

impl ToSchema for Context {}

/// `POST /v1/alerts`: one alert, or an array of at most 1000, each received on its
/// own (the valid ones are accepted even when others are rejected).
pub struct Alerts;

impl PartialSchema for Alerts {
    fn schema() -> RefOr<Schema> {
        let alert = || Ref::from_schema_name(Alert::name());
        OneOfBuilder::new()
            .item(alert())
            .item(
                ArrayBuilder::new()
                    .items(alert())
                    .max_items(Some(crate::serve::MAX_BATCH)),
            )
            .description(Some("One alert, or an array of at most 1000"))
            .into()
    }
}

impl ToSchema for Alerts {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Alert::name().into(), Alert::schema()));
        <Alert as ToSchema>::schemas(schemas);
    }
}

/// `POST /v1/events`: one EventBridge event carrying GuardDuty or Security Hub
/// findings, each received as an alert (see the README's "Alert sources" for the
/// mapping). A finding that lacks what an alert needs is rejected naming its field.
pub struct Event;

impl PartialSchema for Event {
    fn schema() -> RefOr<Schema> {
        let event = |source: &str, detail_type: &str, detail: &str| {
            ObjectBuilder::new()
                .property(
                    "id",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .description(Some(
                            "The event's ID: a redelivered event is recognised by it (a value \
                             that is not a string is ignored: the content identifies the event)",
                        )),
                )
                .property("source", constant(source))
                .property("detail-type", constant(detail_type))
                .property("detail", Ref::from_schema_name(detail))
                .required("source")
                .required("detail-type")
                .required("detail")
        };
        OneOfBuilder::new()
            .item(event(
                "aws.guardduty",
                "GuardDuty Finding",
                GuardDutyFinding::name().as_ref(),
            ))
            .item(event(
                "aws.securityhub",
                "Security Hub Findings - Imported",
                SecurityHubFindings::name().as_ref(),
            ))
            .description(Some("One EventBridge event"))
            .into()
    }
}

impl ToSchema for Event {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((GuardDutyFinding::name().into(), GuardDutyFinding::schema()));
        schemas.push((
            SecurityHubFindings::name().into(),
            SecurityHubFindings::schema(),
        ));
        <SecurityHubFindings as ToSchema>::schemas(schemas);
    }
}

/// A string schema that takes one value.
fn constant(value: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
}

/// A GuardDuty finding (`detail`, camelCase), as much of it as the API requires; the
/// rest (resource, service, action …) gives the alert's key and attributes.
#[derive(ToSchema)]
pub struct GuardDutyFinding {
    /// The finding's ID: the alert's key when the finding names no resource.
    #[schema(min_length = 1, max_length = 1024, pattern = r"\S")]
    pub id: String,
    /// The finding type (`UnauthorizedAccess:EC2/SSHBruteForce`): the alert's `rule_id`.
    #[serde(rename = "type")]
    #[schema(min_length = 1, max_length = 1024, pattern = r"\S")]
    pub finding_type: String,
}

/// Security Hub's `detail`: findings in ASFF.
#[derive(ToSchema)]
pub struct SecurityHubFindings {
    /// At most 100; suppressed (`Workflow.Status`) and archived (`RecordState`) ones
    /// are skipped and counted.
    #[schema(max_items = 100)]
    pub findings: Vec<AsffFinding>,
}

/// A Security Hub finding (ASFF, PascalCase), as much of it as the API requires.
#[derive(ToSchema)]
pub struct AsffFinding {
    /// The finding's ID: the alert's key when it names no resource.
    #[serde(rename = "Id")]
    #[schema(min_length = 1, max_length = 1024, pattern = r"\S")]
    pub id: String,
    /// What produced it: the alert's `rule_id` (without it, the first of `Types`).
    #[serde(rename = "GeneratorId")]
    #[schema(min_length = 1, max_length = 1024, pattern = r"\S")]
    pub generator_id: String,
}

/// The `Idempotency-Key` header.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// The same key is stored once (alert *i* of a batch, or finding *i* of an event,
    /// gets `KEY#i`); without it, the bytes identify the message. Visible ASCII (inner
    /// spaces allowed), at most 1024 bytes.
    #[param(
        rename = "Idempotency-Key",
        required = false,
        min_length = 1,
        max_length = 1024,
        pattern = "^[!-~]([ -~]*[!-~])?$"
    )]
    pub key: String,
}

/// Paging of a list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many (default 100; more than 1000 is taken as 1000).
    #[param(minimum = 0)]
    pub limit: Option<i32>,
    /// How many of the newest to skip.
    #[param(minimum = 0)]
    pub offset: Option<i32>,
}

/// How much of the error list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// How many, newest first (default 100; more than 1000 is taken as 1000).
    #[param(minimum = 0)]
    pub limit: Option<i32>,
}

/// Which report, and in what form.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `json` (the default) or `text`, the rendering a person reads.
    #[param(inline)]
    pub format: Option<ReportFormat>,
}

/// The forms of a report.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// Report JSON.
    Json,
    /// The text rendering.
    Text,
}

// ------------------------------------------------------------------ answers

/// 202: every alert was accepted and committed.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    /// The alerts taken, by their index in the request.
    pub accepted: Vec<AcceptedAlert>,
    /// Empty here.
    #[schema(max_items = 0)]
    pub rejected: Vec<RejectedAlert>,
}

/// 202 of `POST /v1/events`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventAccepted {
    /// The alerts taken, one per finding.
    pub accepted: Vec<AcceptedAlert>,
    /// Empty here.
    #[schema(max_items = 0)]
    pub rejected: Vec<RejectedAlert>,
    /// The event's `id`, if it had one.
    pub event_id: Option<String>,
    /// How many findings were skipped (suppressed or archived).
    pub skipped: u64,
    /// Those findings, and why.
    pub skipped_findings: Vec<SkippedFinding>,
}

/// An alert taken.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptedAlert {
    /// Its index in the request (0 for a single alert).
    pub index: u64,
    /// The report it opened or joined.
    pub report_id: String,
    /// Its alert ID (from detector, rule and key).
    pub alert_id: String,
    /// `new`: it opened the report; `more`: it joined one.
    pub status: ReportStatus,
    /// The message was received before: nothing was stored again.
    pub duplicate: bool,
}

/// An alert not taken.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectedAlert {
    /// Its index in the request.
    pub index: u64,
    /// The field at fault (a JSON path in the alert; `$` for the alert as a whole).
    pub field: String,
    /// What is wrong.
    pub error: String,
}

/// A finding not taken, and why.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkippedFinding {
    /// The finding's ID.
    pub finding_id: String,
    /// Why (suppressed, archived).
    pub why: String,
}

/// 400 of `POST /v1/alerts`: at least one alert was rejected (those in `accepted`
/// were still taken), or the request as a whole was refused (a bad
/// `Idempotency-Key`: only `error` and `field`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejected {
    /// The first rejected alert's error.
    pub error: String,
    /// The first rejected alert's field at fault (`$`: the body, or the alert as a whole).
    pub field: String,
    /// The alerts still taken.
    #[schema(required = false)]
    pub accepted: Vec<AcceptedAlert>,
    /// Every rejected alert.
    #[schema(min_items = 1, required = false)]
    pub rejected: Vec<RejectedAlert>,
}

/// 400 of `POST /v1/events`: an event not taken (only `error` and `field`), or one
/// whose findings were partly rejected (the other fields too).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRejected {
    /// What is wrong (the first rejected finding's error).
    pub error: String,
    /// The field at fault.
    pub field: String,
    /// The alerts still taken.
    #[schema(required = false)]
    pub accepted: Vec<AcceptedAlert>,
    /// Every rejected finding's alert.
    #[schema(required = false)]
    pub rejected: Vec<RejectedAlert>,
    /// The event's `id`, if it had one.
    #[schema(required = false)]
    pub event_id: Option<String>,
    /// How many findings were skipped.
    #[schema(required = false)]
    pub skipped: u64,
    /// The skipped findings.
    #[schema(required = false)]
    pub skipped_findings: Vec<SkippedFinding>,
}

/// 500 or 503: an alert could not be stored (503: retry the request; alerts already
/// accepted are then recognised as duplicates).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Failed {
    /// The first failure.
    pub error: String,
    /// The alerts taken.
    pub accepted: Vec<AcceptedAlert>,
    /// The alerts rejected.
    pub rejected: Vec<RejectedAlert>,
    /// The alerts not stored.
    pub failed: Vec<FailedAlert>,
}

/// An alert that could not be stored.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailedAlert {
    /// Its index in the request.
    pub index: u64,
    /// Why.
    pub error: String,
}

/// A 4xx answer: what is wrong, and where.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// What is wrong.
    pub error: String,
    /// The field at fault: a JSON path in the body (`$` for the body as a whole), or
    /// the name of the parameter or header (`limit`, `id`, `Authorization`).
    #[schema(min_length = 1)]
    pub field: String,
}

/// A 5xx answer of a read.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerError {
    /// What went wrong.
    pub error: String,
}

/// `GET /v1/reports`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportList {
    /// Newest first.
    pub reports: Vec<ReportSummary>,
}

/// A line of the report list.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSummary {
    /// Report ID.
    pub id: String,
    /// The alert ID it aggregates.
    pub alert_id: String,
    /// When it was opened.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last published version (0: never published).
    pub published_version: u32,
    /// Severity of the last published version (null before the first).
    pub severity: Option<Severity>,
    /// Alerts stored for it.
    pub alert_count: u32,
    /// `detector: rule` of its first alert.
    pub title: String,
}

/// A report: everything known about alerts that belong together.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Report ID.
    pub id: String,
    /// The alerts, in the order received.
    pub alerts: Vec<Alert>,
    /// Every attribute inspected for it (of the alerts and discovered).
    pub attributes: Vec<Attribute>,
    /// What the inspectors learned.
    pub sections: Vec<ReportSection>,
    /// The reviewers' decision.
    pub result: ReportResult,
    /// `new`, `more` or `published`.
    pub status: ReportStatus,
    /// When it was opened.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Publication number (0 before the first review).
    pub version: u32,
    /// The result of the version before, if any.
    #[schema(required = false)]
    pub previous_result: ReportResult,
    /// Which inspector ran on which attribute, and how it went.
    pub inspections: Vec<InspectionRecord>,
    /// The alert ID the report aggregates.
    pub alert_id: String,
    /// When this version was published.
    #[schema(format = DateTime, required = false)]
    pub published_at: String,
    /// What was cut to fit a size bound; absent when nothing was.
    #[schema(required = false)]
    pub cut: Cut,
}

/// What one inspector learned about one attribute.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// The report it belongs to.
    pub report_id: String,
    /// The inspector that wrote it.
    pub author: String,
    /// The attribute it is about.
    pub attribute: Attribute,
    /// `host`, `user`, `binary` or another.
    #[serde(rename = "type")]
    pub section_type: String,
    /// The findings (see the plugin contract).
    pub content: serde_json::Value,
}

/// The reviewers' decision.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportResult {
    /// How severe.
    pub severity: Severity,
    /// Why.
    pub reason: String,
}

/// A severity, from least to most severe.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to do.
    Safe,
    /// Not decided: a person should look.
    Unclassified,
    /// Act now.
    Urgent,
}

/// Where a report is in its life.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    /// Opened by one alert, not yet published.
    New,
    /// Joined by further alerts, not yet published.
    More,
    /// Reviewed and handed to the emitters.
    Published,
}

/// The outcome of one inspector on one attribute.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectionRecord {
    /// The inspector (`alertresponder` for the pipeline's own notes).
    pub inspector: String,
    /// The attribute inspected.
    pub attribute: Attribute,
    /// How it went.
    pub status: InspectionStatus,
    /// Error text or a short note.
    #[schema(required = false)]
    pub detail: String,
    /// When it was recorded.
    #[schema(format = DateTime)]
    pub at: String,
}

/// How an inspector fared.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InspectionStatus {
    /// Answered with sections or new attributes.
    Ok,
    /// Answered with nothing.
    NothingFound,
    /// Failed.
    Failed,
    /// Did not answer in time.
    TimedOut,
    /// Not run (a bound was reached, or it does not look such a value up).
    Skipped,
    /// Its quota was spent until the review: nothing is known.
    RateLimited,
}

/// What was cut from a report to fit a size bound.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cut {
    /// Size before cutting, in bytes of JSON.
    pub original_bytes: u64,
    /// Alert bodies replaced by a note.
    pub bodies_removed: u64,
    /// Section contents replaced by a note.
    pub contents_removed: u64,
    /// Sections left out.
    pub sections_omitted: u64,
    /// Alerts left out.
    pub alerts_omitted: u64,
    /// Inspection records left out.
    pub inspections_omitted: u64,
}

/// `GET /v1/errors`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorList {
    /// Newest first.
    pub errors: Vec<ErrorRecord>,
}

/// A rejected input or a failed job, kept with its input.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorRecord {
    /// Message ID for an input, job name for a job.
    pub id: String,
    /// `receive`, `dispatch`, `inspect`, `review` or `deliver`.
    pub stage: String,
    /// The error.
    pub error: String,
    /// The field at fault, for a rejected input.
    #[schema(required = false)]
    pub field: String,
    /// The input (attacker-written: escape it before showing it).
    pub input: String,
    /// Whether `input` was cut to its size bound.
    pub input_truncated: bool,
    /// When it happened.
    #[schema(format = DateTime)]
    pub at: String,
}

/// `GET /healthz`: the job queue's counts.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `ok`.
    pub status: HealthStatus,
    /// The durable jobs.
    pub jobs: QueueStats,
}

/// Whether the service answers.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// It does.
    Ok,
    /// The database did not answer.
    Error,
}

/// The durable jobs by state.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueStats {
    /// Waiting for their due time or a worker.
    pub pending: u64,
    /// Taken by a worker.
    pub running: u64,
    /// Finished.
    pub done: u64,
    /// Given up on.
    pub failed: u64,
    /// Pending jobs by kind (`dispatch`, `inspect`, `review`, `deliver`).
    pub pending_by_kind: std::collections::BTreeMap<String, u64>,
}

/// 503 of `GET /healthz`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Unhealthy {
    /// `error`.
    pub status: HealthStatus,
    /// What went wrong.
    pub error: String,
}
