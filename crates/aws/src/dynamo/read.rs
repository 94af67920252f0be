//! [`ReadStore`] on DynamoDB: a report's meta is one GetItem; its counts are counts
//! of its `alert#` and `attr#` items (no write keeps an alert count, see `admit`, and
//! the meta's claim count may lag the claims, see `claims`); its content is one Query over its partition (page by
//! page), put back in the order it was stored; a published version is one GetItem in
//! the partition of published versions.

use alertresponder_core::error::StoreError;
use alertresponder_core::model::{Alert, Attribute, InspectionRecord, Report, ReportSection};
use alertresponder_core::ports::{ReadStore, ReportCounts, ReportMeta, ReportState};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::{decode_report, get_json, get_n, get_s, last_result_from, meta_from};
use super::findings::{COMPLETES, INSPECTED};
use super::keys::{published_pk, published_sk, report_pk, META_SK};
use super::{DynamoStore, SK};

#[async_trait]
impl ReadStore for DynamoStore {
    async fn report_meta(&self, report_id: &str) -> Result<Option<ReportMeta>, StoreError> {
        let item = self
            .get(&self.report_table, report_pk(report_id), META_SK.into())
            .await?;
        Ok(item.map(|i| meta_from(report_id, &i)).transpose()?)
    }

    /// Three requests at once: the meta item (does the report exist) and a Query with
    /// `Select=COUNT` on each of the `alert#` and `attr#` items, read consistently,
    /// page by page. Not the meta's `attribute_count`: a crash between a claim and its
    /// count leaves it one short (see `claims`); the `attr#` items are the claims.
    async fn report_counts(&self, report_id: &str) -> Result<Option<ReportCounts>, StoreError> {
        let (meta, alerts, attributes) = futures::try_join!(
            self.get(&self.report_table, report_pk(report_id), META_SK.into()),
            self.count_prefix(report_pk(report_id), "alert#"),
            self.count_prefix(report_pk(report_id), "attr#"),
        )?;
        Ok(meta.map(|_| ReportCounts { alerts, attributes }))
    }

    async fn load_report(&self, report_id: &str) -> Result<Option<ReportState>, StoreError> {
        let items = self.query_partition(report_pk(report_id)).await?;
        let mut meta = None;
        let mut alerts = Vec::new();
        let mut attributes = Vec::new();
        let mut sections = Vec::new();
        let mut inspections = Vec::new();
        let mut completed = std::collections::HashSet::new();
        for item in &items {
            let sk = get_s(item, SK, "report item")?;
            let what = format!("item {sk} of report {report_id}");
            if sk == META_SK {
                meta = Some((
                    meta_from(report_id, item)?,
                    last_result_from(report_id, item)?,
                ));
            } else if let Some(message_id) = sk.strip_prefix("alert#") {
                let order = (
                    get_n::<i64>(item, "received_at", &what)?,
                    get_n::<i64>(item, "stored_ns", &what)?,
                    message_id,
                );
                alerts.push((order, get_json::<Alert>(item, &what)?));
            } else if sk.starts_with("attr#") {
                let inspected = matches!(item.get(INSPECTED), Some(AttributeValue::Bool(true)));
                let attribute = get_json::<Attribute>(item, &what)?;
                attributes.push((get_n::<i64>(item, "seq", &what)?, attribute, inspected));
            } else if sk.starts_with("section#") {
                sections.push((
                    (get_n::<i64>(item, "first_ns", &what)?, sk),
                    get_json::<ReportSection>(item, &what)?,
                ));
            } else if let Some(rest) = sk.strip_prefix("inspection#") {
                if matches!(item.get(COMPLETES), Some(AttributeValue::Bool(true))) {
                    // `inspection#<hash>#<inspector>`: the hash has no `#`.
                    if let Some((hash, _)) = rest.split_once('#') {
                        completed.insert(hash.to_string());
                    }
                }
                inspections.push((
                    (get_n::<i64>(item, "first_ns", &what)?, sk),
                    get_json::<InspectionRecord>(item, &what)?,
                ));
            }
        }
        let Some((meta, last_result)) = meta else {
            return Ok(None);
        };
        alerts.sort_by(|a, b| a.0.cmp(&b.0));
        attributes.sort_by_key(|a| a.0);
        sections.sort_by(|a, b| a.0.cmp(&b.0));
        inspections.sort_by(|a, b| a.0.cmp(&b.0));
        let pending = attributes
            .iter()
            .filter(|a| !a.2 && !completed.contains(&a.1.hash()))
            .map(|a| a.1.clone())
            .collect();
        Ok(Some(ReportState {
            meta,
            alerts: alerts.into_iter().map(|a| a.1).collect(),
            attributes: attributes.into_iter().map(|a| a.1).collect(),
            pending,
            sections: sections.into_iter().map(|s| s.1).collect(),
            inspections: inspections.into_iter().map(|i| i.1).collect(),
            last_result,
        }))
    }

    async fn published_report(
        &self,
        report_id: &str,
        version: u32,
    ) -> Result<Option<(Report, String)>, StoreError> {
        let what = format!("published version {version} of report {report_id}");
        let Some(item) = self
            .get(
                &self.report_table,
                published_pk(report_id),
                published_sk(version),
            )
            .await?
        else {
            return Ok(None);
        };
        let publisher = get_s(&item, "publisher", &what)?.to_string();
        Ok(Some((decode_report(&item, &what)?, publisher)))
    }
}
