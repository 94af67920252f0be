//! [`ErrorSink`] and [`ErrorLog`] on DynamoDB: one item per record ID and stage in
//! the error table, so that a retried failure of the same input overwrites its
//! record instead of adding one.

use alertresponder_core::error::StoreError;
use alertresponder_core::model::ErrorRecord;
use alertresponder_core::ports::{ErrorLog, ErrorSink};
use async_trait::async_trait;

use super::codec::{get_json, millis, n, s, to_json};
use super::keys::{error_pk, error_sk, key};
use super::{DynamoStore, TTL_ATTRIBUTE};

#[async_trait]
impl ErrorSink for DynamoStore {
    async fn put_error(&self, record: &ErrorRecord) -> Result<(), StoreError> {
        let json = to_json(record, &format!("error record {}", record.id))?;
        let mut item = key(error_pk(&record.id), error_sk(&record.stage));
        item.extend([
            ("json".to_string(), s(json)),
            ("id".to_string(), s(record.id.clone())),
            ("stage".to_string(), s(record.stage.clone())),
            ("at".to_string(), n(millis(record.at))),
            (TTL_ATTRIBUTE.to_string(), self.ttl()),
        ]);
        self.put(&self.error_table, item).await?;
        Ok(())
    }
}

#[async_trait]
impl ErrorLog for DynamoStore {
    async fn get_error(&self, id: &str, stage: &str) -> Result<Option<ErrorRecord>, StoreError> {
        let item = self
            .get(&self.error_table, error_pk(id), error_sk(stage))
            .await?;
        let what = format!("error record {id} at stage {stage}");
        Ok(item.map(|i| get_json(&i, &what)).transpose()?)
    }
}
