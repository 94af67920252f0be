//! [`MemoryStore`] as a [`BrowseStore`]: every list is a scan of the maps, filtered and
//! sorted on each call. Fine for tests; the point is the same answers as the SQLite
//! store's indexes give (the browse contract runs on both).

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::StoreError;
use crate::ports::{
    AlertArrival, AttributeOrigin, BrowseStore, Cursor, Direction, ErrorCursor, ErrorPage, FoundBy,
    PageRequest, ReadStore, ReportFilter, ReportPage, ReportRow, VersionRecord, MAX_DETECTORS,
    MAX_PAGE,
};

/// A report as the list sees it, with the values search looks at.
struct Listed {
    row: ReportRow,
    values: Vec<String>,
}

impl MemoryStore {
    /// Every report that holds an alert, as a list row.
    async fn listed(&self) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        for id in self.report_ids() {
            let Some(state) = self.load_report(&id).await? else {
                continue;
            };
            let Some(first) = state.alerts.first() else {
                continue;
            };
            let version = state.meta.published_version;
            let latest = match version {
                0 => None,
                v => self.published_report(&id, v).await?.map(|(r, _)| r),
            };
            let mut values = vec![first.alert_key.clone()];
            values.extend(
                state
                    .alerts
                    .iter()
                    .flat_map(|a| a.attributes.iter().map(|x| x.value.clone())),
            );
            values.extend(state.attributes.iter().map(|x| x.value.clone()));
            out.push(Listed {
                row: ReportRow {
                    id: id.clone(),
                    alert_id: state.meta.alert_id.clone(),
                    detector: first.detector.clone(),
                    rule: first.rule().to_string(),
                    alert_key: first.alert_key.clone(),
                    alert_count: u32::try_from(state.alerts.len()).unwrap_or(u32::MAX),
                    version,
                    severity: latest.as_ref().map(|r| r.result.severity),
                    created_at: state.meta.created_at,
                    published_at: latest.and_then(|r| r.published_at),
                },
                values,
            });
        }
        Ok(out)
    }
}

fn keep(listed: &Listed, filter: &ReportFilter) -> Option<Cursor> {
    let row = &listed.row;
    let cursor = row.cursor(filter.time)?;
    let ms = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_millis());
    let kept = filter.severity.is_none_or(|s| row.severity == Some(s))
        && filter.detector.as_ref().is_none_or(|d| *d == row.detector)
        && ms(filter.since).is_none_or(|s| cursor.at_ms >= s)
        && ms(filter.until).is_none_or(|u| cursor.at_ms < u)
        && filter
            .search
            .as_ref()
            .is_none_or(|s| listed.values.iter().any(|v| s.matches(v)));
    kept.then_some(cursor)
}

/// One page of `rows` (sorted newest first by their cursor) from `page`.
fn paged<T: Clone>(rows: &[(Cursor, T)], page: &PageRequest) -> (Vec<T>, bool) {
    let limit = page.bounded_limit();
    let (mut picked, more): (Vec<&(Cursor, T)>, bool) = match (&page.cursor, page.direction) {
        (None, _) => {
            let picked: Vec<_> = rows.iter().take(limit + 1).collect();
            let more = picked.len() > limit;
            (picked, more)
        }
        (Some(c), Direction::Older) => {
            let picked: Vec<_> = rows.iter().filter(|r| r.0 < *c).take(limit + 1).collect();
            let more = picked.len() > limit;
            (picked, more)
        }
        (Some(c), Direction::Newer) => {
            let mut picked: Vec<_> = rows
                .iter()
                .rev()
                .filter(|r| r.0 > *c)
                .take(limit + 1)
                .collect();
            let more = picked.len() > limit;
            picked.truncate(limit);
            picked.reverse();
            return (picked.into_iter().map(|r| r.1.clone()).collect(), more);
        }
    };
    picked.truncate(limit);
    (picked.into_iter().map(|r| r.1.clone()).collect(), more)
}

#[async_trait]
impl BrowseStore for MemoryStore {
    async fn browse_reports(
        &self,
        filter: &ReportFilter,
        page: &PageRequest,
    ) -> Result<ReportPage, StoreError> {
        let mut rows: Vec<(Cursor, ReportRow)> = self
            .listed()
            .await?
            .into_iter()
            .filter_map(|l| keep(&l, filter).map(|c| (c, l.row)))
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0));
        let (reports, more) = paged(&rows, page);
        let first = reports.first().and_then(|r| r.cursor(filter.time));
        let last = reports.last().and_then(|r| r.cursor(filter.time));
        let (older, newer) = match page.direction {
            Direction::Older => (
                last.filter(|_| more),
                first.filter(|_| page.cursor.is_some()),
            ),
            Direction::Newer => (last, first.filter(|_| more)),
        };
        Ok(ReportPage {
            reports,
            older,
            newer,
        })
    }

    async fn detectors(&self) -> Result<Vec<String>, StoreError> {
        let mut all: Vec<String> = self
            .listed()
            .await?
            .into_iter()
            .map(|l| l.row.detector)
            .collect();
        all.sort();
        all.dedup();
        all.truncate(MAX_DETECTORS);
        Ok(all)
    }

    async fn versions(&self, report_id: &str) -> Result<Vec<VersionRecord>, StoreError> {
        let Some(meta) = self.report_meta(report_id).await? else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for version in 1..=meta.published_version {
            if let Some((report, _)) = self.published_report(report_id, version).await? {
                out.push(VersionRecord {
                    version,
                    result: report.result,
                    published_at: report.published_at,
                });
            }
        }
        Ok(out)
    }

    async fn arrivals(
        &self,
        report_id: &str,
        limit: usize,
    ) -> Result<Vec<AlertArrival>, StoreError> {
        Ok(self
            .provenance(report_id)
            .arrivals
            .into_iter()
            .take(limit)
            .map(|(message_id, received_at)| AlertArrival {
                message_id,
                received_at,
            })
            .collect())
    }

    async fn origins(&self, report_id: &str) -> Result<Vec<AttributeOrigin>, StoreError> {
        Ok(self
            .provenance(report_id)
            .claims
            .into_iter()
            .map(|(hash, claimer)| AttributeOrigin {
                hash,
                found_by: FoundBy::from_claimer(&claimer),
            })
            .collect())
    }

    async fn browse_errors(
        &self,
        cursor: Option<&ErrorCursor>,
        limit: usize,
    ) -> Result<ErrorPage, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut all: Vec<(ErrorCursor, _)> = self
            .errors()
            .into_iter()
            .map(|e| (ErrorCursor::of(&e), e))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0));
        let mut errors: Vec<_> = all
            .into_iter()
            .filter(|(c, _)| cursor.is_none_or(|after| c < after))
            .take(limit + 1)
            .map(|(_, e)| e)
            .collect();
        let more = errors.len() > limit;
        errors.truncate(limit);
        let older = errors.last().filter(|_| more).map(ErrorCursor::of);
        Ok(ErrorPage { errors, older })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::fixtures::plugins::TestInspector;
    use crate::fixtures::{raw_alert, t};
    use crate::model::Attribute;
    use crate::ports::{BrowseStore, FoundBy, Inspection, ManualClock};
    use crate::settings::Settings;

    /// The claimers the pipeline writes read back as the alert's message and as the
    /// discovering inspector on its parent: the graph's edges.
    #[tokio::test]
    async fn origins_name_the_alert_and_the_discovering_inspector() {
        let clock = Arc::new(ManualClock::new(t(0)));
        let (mut p, rt) = super::super::pipeline(Settings::default(), clock.clone());
        p.inspectors = vec![Arc::new(TestInspector::new("resolver", |task| {
            Ok(Inspection {
                sections: vec![],
                new_attributes: match task.depth {
                    0 => vec![Attribute {
                        attr_type: "domain".into(),
                        key: "resolved".into(),
                        value: "evil.example".into(),
                        context: vec![],
                        timestamp: None,
                    }],
                    _ => vec![],
                },
            })
        }))];
        let raw = serde_json::to_vec(&raw_alert("k", &["192.0.2.1"])).unwrap();
        let receipt = p.receive(&raw, Some("sns-1")).await.unwrap();
        rt.run_until(&p, &clock, None).await.unwrap();
        let origins = rt.store.origins(&receipt.report_id).await.unwrap();
        assert_eq!(origins.len(), 2);
        assert_eq!(
            origins[0].found_by,
            FoundBy::Alert {
                message_id: "sns-1".into()
            }
        );
        assert_eq!(
            origins[1].found_by,
            FoundBy::Inspector {
                parent: origins[0].hash.clone(),
                inspector: "resolver".into()
            }
        );
    }
}
