//! The stack's two DynamoDB tables, created as `template.yaml` declares them (key
//! `pk` + `sk`, on-demand, TTL on `expires_at`), for the tests of the DynamoDB store
//! and the stack in a box. The deployed stack gets them from CloudFormation.

use std::time::Duration;

use alertresponder_aws::dynamo::{DynamoStore, PK, SK, TTL_ATTRIBUTE};
use alertresponder_aws::AwsError;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification,
};

/// Creates the report table and the error table (key `pk` + `sk`, on-demand), waits
/// until they are active and enables TTL on `expires_at`. Fails if a table exists.
pub async fn create_tables(
    client: &aws_sdk_dynamodb::Client,
    report_table: &str,
    error_table: &str,
) -> Result<(), AwsError> {
    for table in [report_table, error_table] {
        create_table(client, table).await?;
    }
    Ok(())
}

/// A [`DynamoStore`] on two new tables of unique names, records kept a day.
pub async fn dynamo_store(sdk: &aws_config::SdkConfig) -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let (reports, errors) = (crate::unique("reports"), crate::unique("errors"));
    if let Err(e) = create_tables(&client, &reports, &errors).await {
        panic!("creating the tables: {e}");
    }
    DynamoStore::new(client, &reports, &errors, Duration::from_secs(86_400))
}

async fn create_table(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), AwsError> {
    let attr = |name: &str| {
        built(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build(),
        )
    };
    let key = |name: &str, kind: KeyType| {
        built(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build(),
        )
    };
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr(PK)?)
        .attribute_definitions(attr(SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(|e| AwsError::sdk("dynamodb", "CreateTable", e))?;
    // UpdateTimeToLive wants an active table; a new on-demand table is so within seconds.
    for _ in 0..300 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| AwsError::sdk("dynamodb", "DescribeTable", e))?;
        let status = described.table.and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(built(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build(),
        )?)
        .send()
        .await
        .map_err(|e| AwsError::sdk("dynamodb", "UpdateTimeToLive", e))?;
    Ok(())
}

/// A request the SDK's builder refused (a required field left out).
fn built<T>(r: Result<T, BuildError>) -> Result<T, AwsError> {
    r.map_err(|e| AwsError::Malformed {
        what: "DynamoDB request".into(),
        message: e.to_string(),
    })
}
