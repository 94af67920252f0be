//! What moto's recorder saw, turned into billable usage: API calls by service and
//! operation, DynamoDB write and read request units, SNS publishes by topic.
//!
//! The recorder keeps requests only, not responses, so a read's size comes from the
//! tables as they are at the end (scanned once the recording stops): an item counts
//! in a read if a recorded write created it before that read, at its final size.
//! Items only grow here (sections, inspections and alerts are added), so read units
//! are an upper estimate.

use std::collections::{BTreeMap, HashMap};

use alertresponder_aws::dynamo::{PK, SK};
use anyhow::{bail, Context};
use base64::Engine;
use serde_json::{Map, Value};

/// One recorded request, by service and operation.
#[derive(Debug, Clone)]
pub struct Call {
    /// Signing name from the Authorization header: `dynamodb`, `sns`, `states`, `sqs`.
    pub service: String,
    /// `PutItem`, `Publish`, `StartExecution` …
    pub operation: String,
    /// The JSON body (JSON protocols) or the form parameters (query protocol).
    pub body: Body,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// `application/x-amz-json-1.0` and friends.
    Json(Value),
    /// `application/x-www-form-urlencoded` (SNS), decoded.
    Form(BTreeMap<String, String>),
}

impl Call {
    /// Whether the box or this program made the call, not the pipeline: the SQS
    /// queues the box reads subscribers through, and its look-ups of executions.
    pub fn is_the_boxs_own(&self) -> bool {
        self.service == "sqs"
            || (self.service == "states"
                && ["ListExecutions", "DescribeExecution"].contains(&self.operation.as_str()))
    }

    fn json(&self) -> &Value {
        static NULL: Value = Value::Null;
        match &self.body {
            Body::Json(v) => v,
            Body::Form(_) => &NULL,
        }
    }

    fn form(&self, name: &str) -> Option<&str> {
        match &self.body {
            Body::Form(f) => f.get(name).map(String::as_str),
            Body::Json(_) => None,
        }
    }
}

/// The recorder's entries as calls, in order.
pub fn calls(recorded: &[Value]) -> anyhow::Result<Vec<Call>> {
    recorded.iter().map(call).collect()
}

fn header<'a>(entry: &'a Value, name: &str) -> Option<&'a str> {
    entry["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn call(entry: &Value) -> anyhow::Result<Call> {
    let url = entry["url"].as_str().unwrap_or_default();
    let raw = entry["body"].as_str().unwrap_or_default();
    let bytes = if entry["body_encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .with_context(|| format!("recorded body of {url} is not base64"))?
    } else {
        raw.as_bytes().to_vec()
    };
    let text = String::from_utf8_lossy(&bytes);
    // `Credential=AKID/20260101/us-east-1/dynamodb/aws4_request`
    let service = header(entry, "Authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .map(str::to_string)
        .with_context(|| format!("recorded request to {url} has no SigV4 credential scope"))?;
    let (operation, body) = match header(entry, "X-Amz-Target") {
        // `DynamoDB_20120810.PutItem`, `AWSStepFunctions.StartExecution`
        Some(target) => (
            target.rsplit('.').next().unwrap_or(target).to_string(),
            Body::Json(serde_json::from_str(&text).unwrap_or(Value::Null)),
        ),
        None => {
            let form = form_decode(&text);
            let action = form
                .get("Action")
                .cloned()
                .with_context(|| format!("recorded {service} request to {url} names no Action"))?;
            (action, Body::Form(form))
        }
    };
    Ok(Call {
        service,
        operation,
        body,
    })
}

fn form_decode(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0));
                i += 2;
            }
            (b, _, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Calls by (service, operation).
pub fn by_operation<'a>(calls: impl Iterator<Item = &'a Call>) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry((c.service.clone(), c.operation.clone()))
            .or_default() += 1;
    }
    out
}

/// The size DynamoDB bills an item at: attribute names plus values (strings and
/// binaries by their bytes, numbers about one byte per two digits plus one, 3 bytes
/// of overhead per map or list and 1 per element).
pub fn item_size(item: &Map<String, Value>) -> u64 {
    item.iter()
        .map(|(name, v)| name.len() as u64 + value_size(v))
        .sum()
}

fn value_size(v: &Value) -> u64 {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let number = |n: &str| {
        let digits = n.chars().filter(char::is_ascii_digit).count() as u64;
        digits.div_ceil(2) + 1
    };
    let binary = |b: &str| (b.len() as u64 * 3) / 4;
    let strings = |f: &dyn Fn(&str) -> u64| {
        inner
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(f).sum())
            .unwrap_or(0)
    };
    match kind.as_str() {
        "S" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => inner.as_str().map_or(0, number),
        "B" => inner.as_str().map_or(0, binary),
        "BOOL" | "NULL" => 1,
        "SS" => strings(&|s| s.len() as u64),
        "NS" => strings(&number),
        "BS" => strings(&binary),
        "M" => 3 + inner.as_object().map_or(0, item_size),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |a| a.iter().map(|e| 1 + value_size(e)).sum())
        }
        _ => 0,
    }
}

/// A table's items at the end of the run: `(pk, sk)` → size in bytes.
pub type TableSizes = HashMap<(String, String), u64>;

/// Key of an item or a `Key` map, as `(pk, sk)` strings.
fn key_of(item: &Value) -> Option<(String, String)> {
    let s = |name: &str| item[name]["S"].as_str().map(str::to_string);
    Some((s(PK)?, s(SK).unwrap_or_default()))
}

/// Every item of `table` with its size, by Scan over moto's API (made after the
/// recording stopped, so not counted).
pub async fn scan_sizes(endpoint: &str, table: &str) -> anyhow::Result<TableSizes> {
    let http = reqwest::Client::new();
    let mut sizes = TableSizes::new();
    let mut start: Option<Value> = None;
    loop {
        let mut body = serde_json::json!({ "TableName": table });
        if let Some(k) = start.take() {
            body["ExclusiveStartKey"] = k;
        }
        let out: Value = http
            .post(endpoint)
            .header("X-Amz-Target", "DynamoDB_20120810.Scan")
            .header("Content-Type", "application/x-amz-json-1.0")
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("scan of {table}"))?
            .json()
            .await
            .with_context(|| format!("scan of {table}: answer is not JSON"))?;
        let Some(items) = out["Items"].as_array() else {
            bail!("scan of {table}: {out}");
        };
        for item in items {
            if let (Some(key), Some(map)) = (key_of(item), item.as_object()) {
                sizes.insert(key, item_size(map));
            }
        }
        match out.get("LastEvaluatedKey") {
            Some(k) if k.as_object().is_some_and(|m| !m.is_empty()) => start = Some(k.clone()),
            _ => return Ok(sizes),
        }
    }
}

/// DynamoDB request units of the recorded calls.
#[derive(Debug, Clone, Default)]
pub struct DynamoUnits {
    /// Write request units.
    pub write: f64,
    /// Read request units.
    pub read: f64,
    /// Reads of items that were not there (billed at the minimum).
    pub missing_reads: u64,
    /// (write, read) units by operation.
    pub by_operation: BTreeMap<String, (f64, f64)>,
    /// Writes by operation and item kind ([`item_kind`]): (items written, write units).
    pub writes_by_item: BTreeMap<(String, String), (u64, f64)>,
}

/// What kind of item a key names: each key part up to its first `#`
/// (`report#…/attr#…`), or whole when it has none (`meta`, `open`).
pub fn item_kind(key: &(String, String)) -> String {
    let part = |s: &str| match s.split_once('#') {
        Some((head, _)) => format!("{head}#…"),
        None => s.to_string(),
    };
    format!("{}/{}", part(&key.0), part(&key.1))
}

const KB: u64 = 1024;
const READ_BLOCK: u64 = 4 * KB;

fn write_units(size: u64) -> f64 {
    size.div_ceil(KB).max(1) as f64
}

fn read_units(size: u64, consistent: bool) -> f64 {
    let units = size.div_ceil(READ_BLOCK).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// Write and read units of the DynamoDB calls, in order. `tables` holds each table's
/// items at the end; an item is there for a read once a recorded write named it.
pub fn dynamo_units(calls: &[Call], tables: &HashMap<String, TableSizes>) -> DynamoUnits {
    let mut units = DynamoUnits::default();
    // (table, key) written so far.
    let mut written: HashMap<String, std::collections::HashSet<(String, String)>> = HashMap::new();
    let final_size = |table: &str, key: &(String, String)| -> Option<u64> {
        tables.get(table).and_then(|t| t.get(key)).copied()
    };
    let wrote = |units: &mut DynamoUnits, op: &str, key: Option<&(String, String)>, w: f64| {
        let kind = key.map_or_else(|| "?".to_string(), item_kind);
        let e = units
            .writes_by_item
            .entry((op.to_string(), kind))
            .or_default();
        e.0 += 1;
        e.1 += w;
    };
    for c in calls.iter().filter(|c| c.service == "dynamodb") {
        let (write_before, read_before) = (units.write, units.read);
        let body = c.json();
        let table = body["TableName"].as_str().unwrap_or_default().to_string();
        let consistent = body["ConsistentRead"].as_bool() == Some(true);
        match c.operation.as_str() {
            "PutItem" => {
                let item = &body["Item"];
                let w = write_units(item.as_object().map_or(0, item_size));
                units.write += w;
                wrote(&mut units, "PutItem", key_of(item).as_ref(), w);
                if let Some(k) = key_of(item) {
                    written.entry(table).or_default().insert(k);
                }
            }
            "UpdateItem" | "DeleteItem" => {
                let key = key_of(&body["Key"]);
                let size = key.as_ref().and_then(|k| final_size(&table, k));
                let w = write_units(size.unwrap_or(0));
                units.write += w;
                wrote(&mut units, &c.operation, key.as_ref(), w);
                if let (Some(k), "UpdateItem") = (key, c.operation.as_str()) {
                    written.entry(table).or_default().insert(k);
                }
            }
            "BatchWriteItem" => {
                for (t, requests) in body["RequestItems"].as_object().into_iter().flatten() {
                    for r in requests.as_array().into_iter().flatten() {
                        if let Some(item) = r["PutRequest"]["Item"].as_object() {
                            let w = write_units(item_size(item));
                            units.write += w;
                            let key = key_of(&r["PutRequest"]["Item"]);
                            wrote(&mut units, "BatchWriteItem", key.as_ref(), w);
                            if let Some(k) = key_of(&r["PutRequest"]["Item"]) {
                                written.entry(t.clone()).or_default().insert(k);
                            }
                        } else {
                            units.write += 1.0;
                            let key = key_of(&r["DeleteRequest"]["Key"]);
                            wrote(&mut units, "BatchWriteItem", key.as_ref(), 1.0);
                        }
                    }
                }
            }
            "TransactWriteItems" => {
                for action in body["TransactItems"].as_array().into_iter().flatten() {
                    let Some((kind, op)) = action.as_object().and_then(|o| o.iter().next()) else {
                        continue;
                    };
                    let t = op["TableName"].as_str().unwrap_or_default().to_string();
                    let size = if kind == "Put" {
                        op["Item"].as_object().map_or(0, item_size)
                    } else {
                        key_of(&op["Key"])
                            .and_then(|k| final_size(&t, &k))
                            .unwrap_or(0)
                    };
                    // Transactions bill two units per started KB of every item,
                    // condition checks included.
                    let w = 2.0 * write_units(size);
                    units.write += w;
                    let any_key = key_of(&op["Item"]).or_else(|| key_of(&op["Key"]));
                    wrote(
                        &mut units,
                        &format!("TransactWriteItems {kind}"),
                        any_key.as_ref(),
                        w,
                    );
                    let key = if kind == "Put" {
                        key_of(&op["Item"])
                    } else if kind == "Update" {
                        key_of(&op["Key"])
                    } else {
                        None
                    };
                    if let Some(k) = key {
                        written.entry(t).or_default().insert(k);
                    }
                }
            }
            "GetItem" => {
                let key = key_of(&body["Key"]);
                let size = key.filter(|k| written.get(&table).is_some_and(|w| w.contains(k)));
                let size = size.and_then(|k| final_size(&table, &k));
                if size.is_none() {
                    units.missing_reads += 1;
                }
                units.read += read_units(size.unwrap_or(0), consistent);
            }
            "BatchGetItem" => {
                for (t, request) in body["RequestItems"].as_object().into_iter().flatten() {
                    let consistent = request["ConsistentRead"].as_bool() == Some(true);
                    for k in request["Keys"].as_array().into_iter().flatten() {
                        let size = key_of(k)
                            .filter(|k| written.get(t).is_some_and(|w| w.contains(k)))
                            .and_then(|k| final_size(t, &k));
                        if size.is_none() {
                            units.missing_reads += 1;
                        }
                        units.read += read_units(size.unwrap_or(0), consistent);
                    }
                }
            }
            "Query" => {
                // Every query here names the partition only (`#pk = :pk`): it reads
                // the whole partition, billed on the sum of its items' sizes.
                let pk = body["ExpressionAttributeValues"]
                    .as_object()
                    .and_then(|m| m.values().next())
                    .and_then(|v| v["S"].as_str())
                    .unwrap_or_default();
                let total: u64 = written
                    .get(&table)
                    .into_iter()
                    .flatten()
                    .filter(|k| k.0 == pk)
                    .filter_map(|k| final_size(&table, k))
                    .sum();
                units.read += read_units(total, consistent);
            }
            _ => {}
        }
        let op = units.by_operation.entry(c.operation.clone()).or_default();
        op.0 += units.write - write_before;
        op.1 += units.read - read_before;
    }
    units
}

/// SNS publishes by topic (the name after the last `:` of the ARN) and the billed
/// publish requests: each started 64 KB of a message is one request.
pub fn sns_publishes(calls: &[Call]) -> (BTreeMap<String, u64>, u64) {
    let mut by_topic = BTreeMap::new();
    let mut billed = 0;
    for c in calls.iter().filter(|c| c.service == "sns") {
        match c.operation.as_str() {
            "Publish" => {
                let topic = c.form("TopicArn").unwrap_or("?");
                let topic = topic.rsplit(':').next().unwrap_or(topic).to_string();
                *by_topic.entry(topic).or_default() += 1;
                let bytes = c.form("Message").map_or(0, str::len) as u64;
                billed += bytes.div_ceil(64 * KB).max(1);
            }
            "PublishBatch" => {
                let topic = c.form("TopicArn").unwrap_or("?");
                let topic = topic.rsplit(':').next().unwrap_or(topic).to_string();
                let messages: Vec<&str> = match &c.body {
                    Body::Form(f) => f
                        .iter()
                        .filter(|(k, _)| k.ends_with(".Message"))
                        .map(|(_, v)| v.as_str())
                        .collect(),
                    Body::Json(_) => vec![],
                };
                *by_topic.entry(topic).or_default() += messages.len() as u64;
                let bytes: u64 = messages.iter().map(|m| m.len() as u64).sum();
                billed += bytes.div_ceil(64 * KB).max(1);
            }
            _ => {}
        }
    }
    (by_topic, billed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_size_counts_names_and_values() {
        let item =
            json!({"pk": {"S": "abc"}, "n": {"N": "1234"}, "m": {"M": {"x": {"BOOL": true}}}});
        // pk 2+3, n 1+3, m 1+3+(1+1)
        assert_eq!(item_size(item.as_object().unwrap()), 15);
    }

    #[test]
    fn form_bodies_are_percent_decoded() {
        let f = form_decode(
            "Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At&Message=a+b%7D",
        );
        assert_eq!(f["TopicArn"], "arn:aws:sns:us-east-1:1:t");
        assert_eq!(f["Message"], "a b}");
    }

    #[test]
    fn a_transaction_bills_two_units_per_item() {
        let put = Call {
            service: "dynamodb".into(),
            operation: "TransactWriteItems".into(),
            body: Body::Json(json!({"TransactItems": [
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}}}},
                {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "c"}, "sk": {"S": "d"}}}}
            ]})),
        };
        let get = Call {
            service: "dynamodb".into(),
            operation: "GetItem".into(),
            body: Body::Json(
                json!({"TableName": "t", "ConsistentRead": true, "Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}}),
            ),
        };
        let tables = HashMap::from([(
            "t".to_string(),
            TableSizes::from([(("a".into(), "b".into()), 6000)]),
        )]);
        let units = dynamo_units(&[get.clone(), put, get], &tables);
        assert_eq!(units.write, 4.0);
        assert_eq!(
            units.writes_by_item[&("TransactWriteItems Put".to_string(), "a/b".to_string())],
            (1, 2.0)
        );
        assert_eq!(
            item_kind(&("report#1".into(), "attr#h".into())),
            "report#…/attr#…"
        );
        // Before the put: missing, 1 unit; after: 6000 bytes, 2 units.
        assert_eq!(units.read, 3.0);
        assert_eq!(units.missing_reads, 1);
    }
}
