//! A walker of the delay state machine as `template.yaml` defines it: the test reads
//! the definition that will be deployed and runs it state by state, invoking the real
//! binaries for Task states. It implements the subset of the Amazon States Language
//! the template uses (Wait with TimestampPath or Seconds, Task on `lambda:invoke` and
//! `sns:publish`, Choice with IsNull/IsPresent/StringEquals/BooleanEquals/NumericEquals,
//! Pass, Succeed, Fail, Parameters, ResultSelector, ResultPath, Retry, Catch) and
//! fails loudly on anything else, so a template change cannot pass unwalked.
//!
//! A Retry waits as its retrier says (`IntervalSeconds`, `BackoffRate`,
//! `MaxDelaySeconds`; the longest wait a jitter allows), at [`RETRY_PACE`] times the
//! speed: a box's delays are seconds where a stack's are minutes, so a retrier that
//! waits for something (inspections still running) keeps its proportions.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// How a Task state's resource is carried out.
#[async_trait::async_trait]
pub trait TaskRunner: Send + Sync {
    /// Invokes the function bound to substitution `function` (e.g. `DispatcherArn`)
    /// with `payload`; `Err((error_type, cause))` for a function error.
    async fn invoke(&self, function: &str, payload: Value) -> Result<Value, (String, String)>;
    /// Publishes `message` to the topic bound to substitution `topic`.
    async fn publish(&self, topic: &str, message: Value) -> Result<Value, (String, String)>;
    /// Called before a Wait state ends, with the time it waits for (the walker
    /// sleeps until then, at most `max_wait`).
    async fn before_wait(&self, _state: &str, _until: DateTime<Utc>) {}
}

/// How many times faster than Step Functions the walk retries (10 s → 200 ms).
pub const RETRY_PACE: u32 = 50;

/// The wait before retry `attempt` (1 for the first) of `retrier`, as Step Functions
/// computes it (defaults: 1 s, rate 2.0, no cap), without jitter.
pub fn retry_delay(retrier: &Value, attempt: u64) -> Duration {
    let interval = retrier
        .get("IntervalSeconds")
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let rate = retrier
        .get("BackoffRate")
        .and_then(Value::as_f64)
        .unwrap_or(2.0);
    let cap = retrier
        .get("MaxDelaySeconds")
        .and_then(Value::as_f64)
        .unwrap_or(f64::INFINITY);
    let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    Duration::from_secs_f64((interval * rate.powi(exponent)).min(cap))
}

/// One state entered.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// State name.
    pub state: String,
    /// Its input.
    pub input: Value,
}

/// The outcome of a walk.
#[derive(Debug, Clone)]
pub struct Walk {
    /// Every state entered, in order (retries count as entries of their own).
    pub steps: Vec<Step>,
    /// `Succeed`, `Fail` or `End`.
    pub end: String,
    /// The final output.
    pub output: Value,
}

impl Walk {
    /// The names of the states entered.
    pub fn path(&self) -> Vec<&str> {
        self.steps.iter().map(|s| s.state.as_str()).collect()
    }

    /// Step Functions state transitions billed for this walk (one per state entered,
    /// one per retry).
    pub fn transitions(&self) -> usize {
        self.steps.len()
    }
}

/// A state machine definition with its substitutions resolved to names.
#[derive(Debug, Clone)]
pub struct Definition {
    /// The ASL document.
    pub asl: Value,
}

/// The delay state machine of `template.yaml` (`DelayStateMachine`), as JSON, with
/// each `${Name}` of its DefinitionSubstitutions left for the runner to bind, and the
/// substitutions (`DispatcherArn` → the function's logical ID, …).
pub fn definition_from_template(
    template_yaml: &str,
) -> Result<(Definition, BTreeMap<String, String>), String> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(template_yaml).map_err(|e| format!("template.yaml: {e}"))?;
    let sm = doc
        .get("Resources")
        .and_then(|r| r.get("DelayStateMachine"))
        .and_then(|r| r.get("Properties"))
        .ok_or("template.yaml: Resources.DelayStateMachine.Properties missing")?;
    let asl = yaml_to_json(
        sm.get("Definition")
            .ok_or("DelayStateMachine has no Definition")?,
    )?;
    let mut subs = BTreeMap::new();
    if let Some(serde_yaml::Value::Mapping(m)) = sm.get("DefinitionSubstitutions") {
        for (k, v) in m {
            let key = k
                .as_str()
                .ok_or("substitution name is not a string")?
                .to_string();
            subs.insert(key, logical_id(v)?);
        }
    }
    Ok((Definition { asl }, subs))
}

/// The logical ID a `!GetAtt X.Arn`, `!Ref X` or `{"Fn::GetAtt": [X, Arn]}` names.
fn logical_id(v: &serde_yaml::Value) -> Result<String, String> {
    use serde_yaml::Value as Y;
    match v {
        Y::Tagged(t) => {
            let tag = t.tag.to_string();
            match (tag.as_str(), &t.value) {
                ("!GetAtt", Y::String(s)) => Ok(s.split('.').next().unwrap_or(s).to_string()),
                ("!GetAtt", Y::Sequence(seq)) => seq
                    .first()
                    .and_then(Y::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| "empty !GetAtt".to_string()),
                ("!Ref", Y::String(s)) => Ok(s.clone()),
                _ => Err(format!("unsupported substitution value {tag}")),
            }
        }
        Y::Mapping(m) => {
            if let Some(Y::Sequence(seq)) = m.get("Fn::GetAtt") {
                return seq
                    .first()
                    .and_then(Y::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| "empty Fn::GetAtt".to_string());
            }
            if let Some(Y::String(s)) = m.get("Ref") {
                return Ok(s.clone());
            }
            Err("unsupported substitution value".into())
        }
        Y::String(s) => Ok(s.clone()),
        _ => Err("unsupported substitution value".into()),
    }
}

fn yaml_to_json(v: &serde_yaml::Value) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("definition is not plain JSON-like YAML: {e}"))
}

/// Reads a path (`$`, `$.a.b`, `$$.Execution.Name`).
pub fn read_path(path: &str, input: &Value, context: &Value) -> Result<Value, String> {
    let (root, rest) = if let Some(r) = path.strip_prefix("$$") {
        (context, r)
    } else if let Some(r) = path.strip_prefix('$') {
        (input, r)
    } else {
        return Err(format!("unsupported path {path}"));
    };
    let mut cur = root;
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        if part.contains('[') || part.contains('*') {
            return Err(format!("unsupported path {path}"));
        }
        cur = cur
            .get(part)
            .ok_or_else(|| format!("States.Runtime: path {path} not found in {cur}"))?;
    }
    Ok(cur.clone())
}

fn has_path(path: &str, input: &Value) -> bool {
    read_path(path, input, &Value::Null).is_ok()
}

/// Writes `value` at ResultPath `path` of `input` (`null` path: input unchanged).
pub fn write_path(path: Option<&str>, input: &Value, value: Value) -> Result<Value, String> {
    let Some(path) = path else {
        return Ok(input.clone());
    };
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("unsupported ResultPath {path}"))?;
    let parts: Vec<&str> = rest.split('.').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Ok(value);
    }
    let mut out = input.clone();
    let mut cur = &mut out;
    for (i, part) in parts.iter().enumerate() {
        let obj = cur
            .as_object_mut()
            .ok_or_else(|| format!("ResultPath {path}: not an object"))?;
        if i == parts.len() - 1 {
            obj.insert(part.to_string(), value);
            break;
        }
        cur = obj.entry(part.to_string()).or_insert_with(|| json!({}));
    }
    Ok(out)
}

/// Applies a Parameters / ResultSelector template (`key.$` fields are paths).
pub fn apply_template(
    template: &Value,
    input: &Value,
    context: &Value,
    subs: &dyn Fn(&str) -> String,
) -> Result<Value, String> {
    match template {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(key) = k.strip_suffix(".$") {
                    let path = v
                        .as_str()
                        .ok_or_else(|| format!("{k}: path is not a string"))?;
                    out.insert(key.to_string(), read_path(path, input, context)?);
                } else {
                    out.insert(k.clone(), apply_template(v, input, context, subs)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::String(s) => Ok(Value::String(subs(s))),
        other => Ok(other.clone()),
    }
}

/// The substitution name in `${Name}`, if the string is one.
pub fn substitution(s: &str) -> Option<&str> {
    s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
}

fn error_matches(list: &Value, error: &str) -> bool {
    list.as_array()
        .map(|a| {
            a.iter().filter_map(Value::as_str).any(|e| {
                e == error
                    || e == "States.ALL"
                    || (e == "States.TaskFailed" && !error.starts_with("States."))
            })
        })
        .unwrap_or(false)
}

fn choice_matches(rule: &Value, input: &Value) -> Result<bool, String> {
    if let Some(all) = rule.get("And").and_then(Value::as_array) {
        for r in all {
            if !choice_matches(r, input)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(not) = rule.get("Not") {
        return Ok(!choice_matches(not, input)?);
    }
    let var = rule
        .get("Variable")
        .and_then(Value::as_str)
        .ok_or("Choice rule without Variable")?;
    if let Some(b) = rule.get("IsPresent").and_then(Value::as_bool) {
        return Ok(has_path(var, input) == b);
    }
    let value = read_path(var, input, &Value::Null)?;
    if let Some(b) = rule.get("IsNull").and_then(Value::as_bool) {
        return Ok(value.is_null() == b);
    }
    if let Some(s) = rule.get("StringEquals") {
        return Ok(&value == s);
    }
    if let Some(s) = rule.get("BooleanEquals") {
        return Ok(&value == s);
    }
    if let Some(n) = rule.get("NumericEquals") {
        return Ok(value.as_f64() == n.as_f64());
    }
    Err(format!("unsupported Choice rule {rule}"))
}

/// Walks `definition` from its StartAt with `input`, as execution `execution_name`.
/// `max_wait` bounds each Wait (a test sets the stack's delays to seconds).
pub async fn walk(
    definition: &Definition,
    runner: &dyn TaskRunner,
    execution_name: &str,
    input: Value,
    max_wait: Duration,
) -> Result<Walk, String> {
    let asl = &definition.asl;
    let states = asl.get("States").ok_or("definition without States")?;
    let context = json!({ "Execution": { "Name": execution_name, "Input": input.clone() } });
    let mut current = asl
        .get("StartAt")
        .and_then(Value::as_str)
        .ok_or("definition without StartAt")?
        .to_string();
    let mut data = input;
    let mut steps = Vec::new();
    let keep = |s: &str| s.to_string();
    for _ in 0..200 {
        let state = states
            .get(&current)
            .ok_or_else(|| format!("state {current} is not defined"))?;
        steps.push(Step {
            state: current.clone(),
            input: data.clone(),
        });
        let kind = state.get("Type").and_then(Value::as_str).unwrap_or("");
        let next = state
            .get("Next")
            .and_then(Value::as_str)
            .map(str::to_string);
        let end = state.get("End").and_then(Value::as_bool).unwrap_or(false);
        match kind {
            "Wait" => {
                let until = if let Some(p) = state.get("TimestampPath").and_then(Value::as_str) {
                    let t = read_path(p, &data, &context)?;
                    let s = t
                        .as_str()
                        .ok_or_else(|| format!("{current}: {p} is not a string: {t}"))?;
                    if !(s.ends_with('Z') && s.contains('T')) {
                        return Err(format!("{current}: {p} = {s} is not an ISO 8601 UTC timestamp Step Functions takes"));
                    }
                    DateTime::parse_from_rfc3339(s)
                        .map_err(|e| format!("{current}: {p} = {s}: {e}"))?
                        .with_timezone(&Utc)
                } else if let Some(secs) = state.get("Seconds").and_then(Value::as_i64) {
                    Utc::now() + chrono::Duration::seconds(secs)
                } else {
                    return Err(format!("{current}: unsupported Wait"));
                };
                runner.before_wait(&current, until).await;
                let wait = (until - Utc::now()).to_std().unwrap_or_default();
                if wait > max_wait {
                    return Err(format!(
                        "{current} waits {wait:?}, more than the test allows ({max_wait:?})"
                    ));
                }
                tokio::time::sleep(wait).await;
            }
            "Pass" => {
                let result = state.get("Result").cloned().unwrap_or_else(|| data.clone());
                data = write_path(
                    state.get("ResultPath").map_or(Some("$"), Value::as_str),
                    &data,
                    result,
                )?;
            }
            "Choice" => {
                let mut chosen = None;
                for rule in state
                    .get("Choices")
                    .and_then(Value::as_array)
                    .ok_or("Choice without Choices")?
                {
                    if choice_matches(rule, &data)? {
                        chosen = rule.get("Next").and_then(Value::as_str).map(str::to_string);
                        break;
                    }
                }
                current = chosen
                    .or_else(|| {
                        state
                            .get("Default")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .ok_or_else(|| format!("{current}: no choice matched and no Default"))?;
                continue;
            }
            "Succeed" => {
                return Ok(Walk {
                    steps,
                    end: "Succeed".into(),
                    output: data,
                })
            }
            "Fail" => {
                return Ok(Walk {
                    steps,
                    end: "Fail".into(),
                    output: data,
                })
            }
            "Task" => {
                // template.yaml writes the partition as a substitution
                // (`arn:${Partition}:states:::…`); the walk plays the aws partition.
                let resource = state
                    .get("Resource")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .replace("arn:${Partition}:", "arn:aws:");
                let params = state
                    .get("Parameters")
                    .cloned()
                    .unwrap_or(json!({"Payload.$": "$"}));
                let args = apply_template(&params, &data, &context, &keep)?;
                let mut attempts: BTreeMap<usize, u64> = BTreeMap::new();
                let outcome = loop {
                    let r = match resource.as_str() {
                        "arn:aws:states:::lambda:invoke" => {
                            let f = args
                                .get("FunctionName")
                                .and_then(Value::as_str)
                                .unwrap_or("");
                            let f = substitution(f).ok_or_else(|| {
                                format!("{current}: FunctionName {f} is not a ${{substitution}}")
                            })?;
                            runner
                                .invoke(f, args.get("Payload").cloned().unwrap_or(Value::Null))
                                .await
                                .map(|p| json!({"Payload": p, "StatusCode": 200}))
                        }
                        "arn:aws:states:::sns:publish" => {
                            let t = args.get("TopicArn").and_then(Value::as_str).unwrap_or("");
                            let t = substitution(t).ok_or_else(|| {
                                format!("{current}: TopicArn {t} is not a ${{substitution}}")
                            })?;
                            let message = args.get("Message").cloned().unwrap_or(Value::Null);
                            runner.publish(t, message).await
                        }
                        other => return Err(format!("{current}: unsupported resource {other}")),
                    };
                    let Err((error, cause)) = r else { break r };
                    let retriers = state
                        .get("Retry")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let retrier = retriers.iter().enumerate().find(|(_, rt)| {
                        rt.get("ErrorEquals")
                            .is_some_and(|l| error_matches(l, &error))
                    });
                    if let Some((i, rt)) = retrier {
                        let max = rt.get("MaxAttempts").and_then(Value::as_u64).unwrap_or(3);
                        let n = attempts.entry(i).or_default();
                        if *n < max {
                            *n += 1;
                            steps.push(Step {
                                state: format!("{current} (retry {n})"),
                                input: data.clone(),
                            });
                            tokio::time::sleep(retry_delay(rt, *n) / RETRY_PACE).await;
                            continue;
                        }
                    }
                    break Err((error, cause));
                };
                match outcome {
                    Ok(raw) => {
                        let selected = match state.get("ResultSelector") {
                            Some(sel) => apply_template(sel, &raw, &context, &keep)?,
                            None => raw,
                        };
                        let rp = match state.get("ResultPath") {
                            None => Some("$"),
                            Some(Value::Null) => None,
                            Some(v) => v.as_str(),
                        };
                        data = write_path(rp, &data, selected)?;
                    }
                    Err((error, cause)) => {
                        let catcher = state.get("Catch").and_then(Value::as_array).and_then(|c| {
                            c.iter()
                                .find(|c| {
                                    c.get("ErrorEquals")
                                        .is_some_and(|l| error_matches(l, &error))
                                })
                                .cloned()
                        });
                        eprintln!("walker: {current} failed with {error}: {cause}");
                        let Some(c) = catcher else {
                            return Err(format!(
                                "{current} failed with {error}: {cause}, and nothing catches it"
                            ));
                        };
                        let rp = match c.get("ResultPath") {
                            None => Some("$"),
                            Some(Value::Null) => None,
                            Some(v) => v.as_str(),
                        };
                        data = write_path(rp, &data, json!({"Error": error, "Cause": cause}))?;
                        current = c
                            .get("Next")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{current}: Catch without Next"))?
                            .to_string();
                        continue;
                    }
                }
            }
            other => return Err(format!("{current}: unsupported state type {other:?}")),
        }
        if end {
            return Ok(Walk {
                steps,
                end: "End".into(),
                output: data,
            });
        }
        current = next.ok_or_else(|| format!("{current}: neither Next nor End"))?;
    }
    Err("more than 200 states entered: a loop?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_and_write_nested_fields() {
        let input = json!({"a": {"b": 1}});
        assert_eq!(read_path("$.a.b", &input, &Value::Null).unwrap(), json!(1));
        assert!(read_path("$.a.c", &input, &Value::Null).is_err());
        let out = write_path(Some("$.x.y"), &input, json!(2)).unwrap();
        assert_eq!(out, json!({"a": {"b": 1}, "x": {"y": 2}}));
        assert_eq!(write_path(None, &input, json!(2)).unwrap(), input);
        let ctx = json!({"Execution": {"Name": "n"}});
        let t = apply_template(
            &json!({"p.$": "$$.Execution.Name", "f": "${F}"}),
            &input,
            &ctx,
            &|s| s.to_string(),
        )
        .unwrap();
        assert_eq!(t, json!({"p": "n", "f": "${F}"}));
    }

    #[test]
    fn retries_wait_as_the_retrier_says() {
        let r = json!({"IntervalSeconds": 10, "BackoffRate": 1.5, "MaxDelaySeconds": 60});
        let waits: Vec<f64> = (1..=6).map(|n| retry_delay(&r, n).as_secs_f64()).collect();
        assert_eq!(waits, [10.0, 15.0, 22.5, 33.75, 50.625, 60.0]);
        assert_eq!(retry_delay(&json!({}), 3), Duration::from_secs(4));
        assert_eq!(retry_delay(&r, 1) / RETRY_PACE, Duration::from_millis(200));
    }

    /// The dispatcher and reviewer invoker as the template's machine sees them: a plan
    /// for `version`, and a review that finds inspections pending `pending` times.
    struct Steps {
        version: u32,
        pending: std::sync::atomic::AtomicU32,
        fail: Option<&'static str>,
    }

    #[async_trait::async_trait]
    impl TaskRunner for Steps {
        async fn invoke(&self, f: &str, payload: Value) -> Result<Value, (String, String)> {
            match f {
                "DispatcherArn" => {
                    assert_eq!(payload["job"]["job"], "dispatch", "{payload}");
                    Ok(json!({"report_id": "r", "version": self.version,
                              "review_at": "2000-01-01T00:00:00Z"}))
                }
                "ReviewerInvokerArn" => {
                    assert_eq!(payload["report_id"], "r", "{payload}");
                    assert_eq!(payload["publisher"], "dispatch-r", "{payload}");
                    if let Some(kind) = self.fail {
                        return Err((kind.into(), "no".into()));
                    }
                    let left = self.pending.load(std::sync::atomic::Ordering::SeqCst);
                    if left > 0 {
                        self.pending
                            .store(left - 1, std::sync::atomic::Ordering::SeqCst);
                        return Err(("InspectionsPending".into(), "1 pending".into()));
                    }
                    let published = payload["version"] != 0;
                    Ok(
                        json!({"published": published, "version": payload["version"],
                              "severity": if published { json!("urgent") } else { Value::Null }}),
                    )
                }
                other => panic!("the machine invokes {other}"),
            }
        }
        async fn publish(&self, t: &str, _m: Value) -> Result<Value, (String, String)> {
            assert_eq!(t, "ErrorTopicArn");
            Ok(json!({"MessageId": "m"}))
        }
    }

    #[tokio::test]
    async fn the_template_s_machine_takes_four_transitions_on_every_path() {
        let root = crate::stack_box::workspace_root();
        let template = std::fs::read_to_string(root.join("template.yaml")).unwrap();
        let (definition, subs) = definition_from_template(&template).unwrap();
        assert_eq!(
            subs.get("ReviewerInvokerArn").map(String::as_str),
            Some("ReviewerInvokerFunction")
        );
        let input = json!({"job": {"job": "dispatch", "report_id": "r", "message_id": "m"},
                           "dispatch_at": "2000-01-01T00:00:00Z"});
        let run = |version, pending, fail| {
            let (definition, input) = (definition.clone(), input.clone());
            async move {
                let steps = Steps {
                    version,
                    pending: std::sync::atomic::AtomicU32::new(pending),
                    fail,
                };
                walk(
                    &definition,
                    &steps,
                    "dispatch-r",
                    input,
                    Duration::from_secs(1),
                )
                .await
                .unwrap()
            }
        };
        let four = [
            "WaitInspectionDelay",
            "Dispatch",
            "WaitReviewDelay",
            "Review",
        ];
        // A review due, and none (an alert that only added attributes): the same walk.
        for version in [1, 0] {
            let w = run(version, 0, None).await;
            assert_eq!(w.path(), four, "version {version}");
            assert_eq!(w.transitions(), 4);
            assert_eq!(w.end, "End");
            assert_eq!(w.output["result"]["version"], version);
            assert_eq!(w.output["review"]["report_id"], "r");
        }
        // Inspections pending: the Review retries, on its own schedule.
        let w = run(1, 2, None).await;
        assert_eq!(
            w.path(),
            [&four[..], &["Review (retry 1)", "Review (retry 2)"]].concat()
        );
        assert_eq!(w.output["result"]["published"], true);
        // A failure that is no retry's: caught, published with the state, failed.
        let w = run(1, 0, Some("Permanent")).await;
        assert_eq!(w.path(), [&four[..], &["PublishError", "Failed"]].concat());
        assert_eq!(w.end, "Fail");
    }

    struct Echo;

    #[async_trait::async_trait]
    impl TaskRunner for Echo {
        async fn invoke(&self, f: &str, payload: Value) -> Result<Value, (String, String)> {
            if f == "Broken" {
                return Err(("Permanent".into(), "broken".into()));
            }
            Ok(json!({"seen": payload}))
        }
        async fn publish(&self, _t: &str, m: Value) -> Result<Value, (String, String)> {
            Ok(json!({"MessageId": "m", "echo": m}))
        }
    }

    #[tokio::test]
    async fn a_walk_follows_tasks_choices_and_catches() {
        let asl = json!({
            "StartAt": "W",
            "States": {
                "W": {"Type": "Wait", "TimestampPath": "$.at", "Next": "T"},
                "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                      "Parameters": {"FunctionName": "${Fn}", "Payload.$": "$.x"},
                      "ResultSelector": {"r.$": "$.Payload.seen"}, "ResultPath": "$.out", "Next": "C"},
                "C": {"Type": "Choice", "Choices": [{"Variable": "$.out.r", "IsNull": false, "Next": "B"}], "Default": "Done"},
                "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                      "Parameters": {"FunctionName": "${Broken}", "Payload.$": "$"},
                      "Retry": [{"ErrorEquals": ["Retryable"], "MaxAttempts": 2}],
                      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "P"}], "End": true},
                "P": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                      "Parameters": {"TopicArn": "${Err}", "Message.$": "$"}, "Next": "F"},
                "F": {"Type": "Fail"},
                "Done": {"Type": "Succeed"}
            }
        });
        let w = walk(
            &Definition { asl },
            &Echo,
            "e",
            json!({"at": "2000-01-01T00:00:00Z", "x": 5}),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        assert_eq!(w.path(), vec!["W", "T", "C", "B", "P", "F"]);
        assert_eq!(w.end, "Fail");
        // The Catch put the error beside the state; the publish then replaced the state
        // with its own result (no ResultPath), as Step Functions does.
        let published = &w.steps.iter().find(|s| s.state == "P").unwrap().input;
        assert_eq!(published["error"]["Error"], "Permanent");
        assert_eq!(published["out"]["r"], 5);
        assert_eq!(w.output["MessageId"], "m");
    }
}
