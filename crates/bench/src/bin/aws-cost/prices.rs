//! Public on-demand prices, us-east-1, and what a report's usage costs at them.

use std::collections::BTreeMap;

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

/// Billed duration assumed per invocation, in milliseconds: the box runs debug builds
/// under an emulator, so its timings say nothing about Lambda's.
pub fn assumed_billed_ms(function: &str) -> u64 {
    match function {
        // Waits for the inspector it invokes.
        "inspector-harness" => 200,
        _ => 100,
    }
}

/// What one report used.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// State transitions.
    pub transitions: u64,
    /// Lambda invocations by function.
    pub invocations: BTreeMap<String, u64>,
    /// Function memory in MB.
    pub memory_mb: u64,
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
    /// DynamoDB.
    pub dynamo: f64,
    /// SNS.
    pub sns: f64,
}

impl Cost {
    /// Of one report's usage.
    pub fn of(u: &Usage) -> Cost {
        let requests: u64 = u.invocations.values().sum();
        let gb_seconds: f64 = u
            .invocations
            .iter()
            .map(|(f, n)| {
                *n as f64 * assumed_billed_ms(f) as f64 / 1000.0 * u.memory_mb as f64 / 1024.0
            })
            .sum();
        Cost {
            step_functions: u.transitions as f64 * SFN_PER_TRANSITION,
            lambda_requests: requests as f64 * LAMBDA_PER_REQUEST,
            lambda_compute: gb_seconds * LAMBDA_PER_GB_SECOND,
            dynamo: u.write_units * DYNAMO_PER_WRITE_UNIT + u.read_units * DYNAMO_PER_READ_UNIT,
            sns: u.publishes as f64 * SNS_PER_PUBLISH,
        }
    }

    /// The sum.
    pub fn total(&self) -> f64 {
        self.step_functions + self.lambda_requests + self.lambda_compute + self.dynamo + self.sns
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
            memory_mb: 256,
            ..Usage::default()
        });
        assert!((c.step_functions - 25.0).abs() < 1e-9);
    }
}
