//! Public on-demand prices, us-east-1, and what a report's usage costs at them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};

/// Step Functions Standard: $0.025 per 1,000 state transitions.
pub const SFN_PER_TRANSITION: f64 = 0.025 / 1_000.0;
/// Lambda: $0.20 per million requests.
pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
/// Lambda on x86_64 (the template's default Architecture): $0.0000166667 per GB-s.
pub const LAMBDA_PER_GB_SECOND: f64 = 0.000_016_666_7;
/// DynamoDB on-demand: $0.625 per million write request units.
pub const DYNAMO_PER_WRITE_UNIT: f64 = 0.625 / 1e6;
/// DynamoDB on-demand: $0.125 per million read request units.
pub const DYNAMO_PER_READ_UNIT: f64 = 0.125 / 1e6;
/// SNS: $0.50 per million publishes (each started 64 KB of a message is one).
pub const SNS_PER_PUBLISH: f64 = 0.50 / 1e6;

/// Billed duration assumed per invocation before durations were measured, in
/// milliseconds: printed beside the measured ones for comparison.
pub fn assumed_billed_ms(function: &str) -> u64 {
    match function {
        // Waits for the inspector it invokes.
        "inspector-harness" => 200,
        _ => 100,
    }
}

/// Milliseconds Lambda bills for a run of `d`: rounded up to the next millisecond.
pub fn billed_ms(d: Duration) -> u64 {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    micros.div_ceil(1000).max(1)
}

/// Count, median (nearest rank: the lower of the two middle ones) and maximum of
/// some durations; `None` for none.
pub fn stats(durations: &[Duration]) -> Option<(usize, Duration, Duration)> {
    let mut sorted = durations.to_vec();
    sorted.sort();
    let max = *sorted.last()?;
    let p50 = sorted[(sorted.len() - 1) / 2];
    Some((sorted.len(), p50, max))
}

/// `MemorySize` of each function of a SAM template, by its binary
/// (`Metadata.BuildProperties.Binary`): the function's `Properties.MemorySize`, else
/// `Globals.Function.MemorySize`, else Lambda's default, 128 MB.
pub fn function_memory_mb(template_yaml: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let doc: serde_yaml::Value = serde_yaml::from_str(template_yaml).context("template parses")?;
    let memory = |v: Option<&serde_yaml::Value>| -> anyhow::Result<Option<u64>> {
        match v {
            None => Ok(None),
            Some(m) => m
                .as_u64()
                .map(Some)
                .with_context(|| format!("MemorySize {m:?} is not a number of MB")),
        }
    };
    let global = memory(
        doc.get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(|f| f.get("MemorySize")),
    )?
    .unwrap_or(128);
    let mut out = BTreeMap::new();
    let Some(resources) = doc.get("Resources").and_then(|r| r.as_mapping()) else {
        bail!("template has no Resources");
    };
    for (id, resource) in resources {
        let Some(binary) = resource
            .get("Metadata")
            .and_then(|m| m.get("BuildProperties"))
            .and_then(|b| b.get("Binary"))
            .and_then(|b| b.as_str())
        else {
            continue;
        };
        let own = memory(resource.get("Properties").and_then(|p| p.get("MemorySize")))
            .with_context(|| format!("{id:?}"))?;
        out.insert(binary.to_string(), own.unwrap_or(global));
    }
    if out.is_empty() {
        bail!("template has no function with Metadata.BuildProperties.Binary");
    }
    Ok(out)
}

/// One function's part of a report.
#[derive(Debug, Clone, Default)]
pub struct FunctionUsage {
    /// Invocations.
    pub invocations: u64,
    /// Its MemorySize, MB.
    pub memory_mb: u64,
    /// Billed duration of one invocation, ms.
    pub billed_ms: u64,
}

impl FunctionUsage {
    /// GB-seconds of all its invocations.
    pub fn gb_seconds(&self) -> f64 {
        self.invocations as f64 * self.billed_ms as f64 / 1000.0 * self.memory_mb as f64 / 1024.0
    }
}

/// What one report used.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// State transitions.
    pub transitions: u64,
    /// Lambda use by function.
    pub functions: BTreeMap<String, FunctionUsage>,
    /// DynamoDB write request units.
    pub write_units: f64,
    /// DynamoDB read request units.
    pub read_units: f64,
    /// Billed SNS publish requests.
    pub publishes: u64,
}

/// Dollars per report, by line.
#[derive(Debug, Clone, Default)]
pub struct Cost {
    /// Step Functions.
    pub step_functions: f64,
    /// Lambda requests.
    pub lambda_requests: f64,
    /// Lambda GB-seconds.
    pub lambda_compute: f64,
    /// DynamoDB write request units.
    pub dynamo_write: f64,
    /// DynamoDB read request units.
    pub dynamo_read: f64,
    /// SNS.
    pub sns: f64,
}

impl Cost {
    /// Of one report's usage.
    pub fn of(u: &Usage) -> Cost {
        let requests: u64 = u.functions.values().map(|f| f.invocations).sum();
        let gb_seconds: f64 = u.functions.values().map(FunctionUsage::gb_seconds).sum();
        Cost {
            step_functions: u.transitions as f64 * SFN_PER_TRANSITION,
            lambda_requests: requests as f64 * LAMBDA_PER_REQUEST,
            lambda_compute: gb_seconds * LAMBDA_PER_GB_SECOND,
            dynamo_write: u.write_units * DYNAMO_PER_WRITE_UNIT,
            dynamo_read: u.read_units * DYNAMO_PER_READ_UNIT,
            sns: u.publishes as f64 * SNS_PER_PUBLISH,
        }
    }

    /// The sum.
    pub fn total(&self) -> f64 {
        self.step_functions
            + self.lambda_requests
            + self.lambda_compute
            + self.dynamo_write
            + self.dynamo_read
            + self.sns
    }
}

/// Dollars with cents and thousands grouped: `$1,234.56`.
pub fn dollars(x: f64) -> String {
    let cents = (x * 100.0).round() as u64;
    let whole = (cents / 100).to_string();
    let head = whole.len() % 3;
    let mut groups: Vec<&str> = Vec::new();
    if head > 0 {
        groups.push(&whole[..head]);
    }
    groups.extend(
        whole.as_bytes()[head..]
            .chunks(3)
            .filter_map(|c| std::str::from_utf8(c).ok()),
    );
    let grouped = groups.join(",");
    format!("${grouped}.{:02}", cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_group_thousands() {
        assert_eq!(dollars(1234.567), "$1,234.57");
        assert_eq!(dollars(0.4), "$0.40");
        assert_eq!(dollars(165.74), "$165.74");
    }

    #[test]
    fn a_million_transitions_cost_25_dollars() {
        let c = Cost::of(&Usage {
            transitions: 1_000_000,
            ..Usage::default()
        });
        assert!((c.step_functions - 25.0).abs() < 1e-9);
    }

    const TEMPLATE: &str = "
Globals:
  Function:
    MemorySize: 256
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Small:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: small
    Properties:
      Role: !GetAtt SmallRole.Arn
  Big:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: big
    Properties:
      MemorySize: 1024
";

    #[test]
    fn each_function_has_its_own_memory() {
        let m = function_memory_mb(TEMPLATE).unwrap();
        assert_eq!(
            m,
            BTreeMap::from([("big".to_string(), 1024), ("small".to_string(), 256)])
        );
        // No Globals: Lambda's default.
        let bare = TEMPLATE.replace("    MemorySize: 256\n", "");
        assert_eq!(function_memory_mb(&bare).unwrap()["small"], 128);
    }

    #[test]
    fn the_template_prices_the_reviewer_invoker_at_its_own_memory() {
        let path = alertresponder_aws_testkit::stack_box::workspace_root().join("template.yaml");
        let m = function_memory_mb(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(m.len(), 5, "{m:?}");
        assert!(m["reviewer-invoker"] > m["receptor"], "{m:?}");
    }

    #[test]
    fn compute_is_priced_per_function() {
        let u = Usage {
            functions: BTreeMap::from([
                (
                    "small".to_string(),
                    FunctionUsage {
                        invocations: 2,
                        memory_mb: 256,
                        billed_ms: 10,
                    },
                ),
                (
                    "big".to_string(),
                    FunctionUsage {
                        invocations: 1,
                        memory_mb: 1024,
                        billed_ms: 40,
                    },
                ),
            ]),
            ..Usage::default()
        };
        let c = Cost::of(&u);
        // 2 × 0.010 s × 0.25 GB + 0.040 s × 1 GB = 0.045 GB-s
        assert!((c.lambda_compute - 0.045 * LAMBDA_PER_GB_SECOND).abs() < 1e-15);
        assert!((c.lambda_requests - 3.0 * LAMBDA_PER_REQUEST).abs() < 1e-15);
    }

    #[test]
    fn lambda_bills_whole_milliseconds_rounded_up() {
        assert_eq!(billed_ms(Duration::from_micros(12_001)), 13);
        assert_eq!(billed_ms(Duration::from_micros(12_000)), 12);
        assert_eq!(billed_ms(Duration::from_micros(10)), 1);
    }

    #[test]
    fn stats_take_the_lower_median() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        assert_eq!(stats(&[]), None);
        assert_eq!(
            stats(&ms(&[30, 10, 20, 40])),
            Some((4, Duration::from_millis(20), Duration::from_millis(40)))
        );
        assert_eq!(
            stats(&ms(&[5])),
            Some((1, Duration::from_millis(5), Duration::from_millis(5)))
        );
    }
}
