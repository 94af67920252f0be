//! Where the scenarios publish and read: resolved from the stacks' outputs and
//! parameters with CloudFormation's DescribeStacks, so the tests need nothing but the
//! stack names. The stack in a box registers stand-in stacks with the same outputs in
//! moto and resolves them the same way.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Config;

/// The main stack's outputs the tests read.
pub const MAIN_OUTPUTS: [&str; 1] = ["IngestTopicArn"];
/// The main stack's parameters the tests read.
pub const MAIN_PARAMETERS: [&str; 4] = [
    "InspectionDelay",
    "ReviewDelay",
    "InspectorFunctions",
    "ReviewerFunctions",
];
/// The tester stack's outputs the tests read.
pub const TESTER_OUTPUTS: [&str; 2] = ["ReportQueueUrl", "ErrorQueueUrl"];
/// The tester's functions are `<tester stack>-<suffix>`.
pub const FUNCTION_SUFFIXES: [&str; 2] = ["inspector", "reviewer"];

/// Longest ReviewDelay the tests accept: each scenario waits for a review or two.
pub const MAX_REVIEW_DELAY_SECS: u64 = 300;

/// What the scenarios need of the two stacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The main stack's ingest topic (output IngestTopicArn).
    pub ingest_topic_arn: String,
    /// The tester's queue subscribed to the report topic (output ReportQueueUrl).
    pub report_queue_url: String,
    /// The tester's queue subscribed to the error topic (output ErrorQueueUrl).
    pub error_queue_url: String,
    /// The inspector's name as sections carry it (the tester's inspector function).
    pub inspector: String,
    /// The main stack's InspectionDelay.
    pub inspection_delay: Duration,
    /// The main stack's ReviewDelay.
    pub review_delay: Duration,
}

/// One stack's outputs and parameters.
#[derive(Debug, Clone, Default)]
pub struct StackFacts {
    /// Status (`CREATE_COMPLETE` …).
    pub status: String,
    /// OutputKey → OutputValue.
    pub outputs: BTreeMap<String, String>,
    /// ParameterKey → ParameterValue.
    pub parameters: BTreeMap<String, String>,
}

impl StackFacts {
    fn output(&self, stack: &str, key: &str) -> Result<String, String> {
        self.outputs.get(key).cloned().ok_or_else(|| {
            format!("stack {stack} has no output {key}: is it the right stack, fully deployed?")
        })
    }

    fn seconds(&self, stack: &str, key: &str) -> Result<Duration, String> {
        self.parameters
            .get(key)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .ok_or_else(|| format!("stack {stack}: parameter {key} missing or not a number"))
    }
}

/// DescribeStacks of `name`.
pub async fn describe(
    cfn: &aws_sdk_cloudformation::Client,
    name: &str,
) -> Result<StackFacts, String> {
    let out = cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "DescribeStacks {name}: {}",
                aws_sdk_cloudformation::error::DisplayErrorContext(e)
            )
        })?;
    let stack = out
        .stacks
        .unwrap_or_default()
        .into_iter()
        .next()
        .ok_or_else(|| format!("stack {name} not found"))?;
    Ok(StackFacts {
        status: stack
            .stack_status
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        outputs: stack
            .outputs
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| Some((o.output_key?, o.output_value?)))
            .collect(),
        parameters: stack
            .parameters
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some((p.parameter_key?, p.parameter_value?)))
            .collect(),
    })
}

impl Target {
    /// The target of `config`'s stacks: checks that both are deployed, that the main
    /// stack has short delays and names the tester's functions.
    pub async fn resolve(
        cfn: &aws_sdk_cloudformation::Client,
        config: &Config,
    ) -> Result<Target, String> {
        let main = describe(cfn, &config.main_stack_name).await?;
        let tester = describe(cfn, &config.tester_stack_name).await?;
        Target::from_facts(config, &main, &tester)
    }

    /// [`Target::resolve`] on facts already read.
    pub fn from_facts(
        config: &Config,
        main: &StackFacts,
        tester: &StackFacts,
    ) -> Result<Target, String> {
        let (m, t) = (&config.main_stack_name, &config.tester_stack_name);
        for (name, facts) in [(m, main), (t, tester)] {
            if !facts.status.ends_with("_COMPLETE") || facts.status.contains("ROLLBACK") {
                return Err(format!(
                    "stack {name} is {}: deploy it (make deploy-test-stacks)",
                    facts.status
                ));
            }
        }
        let review_delay = main.seconds(m, "ReviewDelay")?;
        if review_delay.as_secs() > MAX_REVIEW_DELAY_SECS {
            return Err(format!(
                "stack {m} has ReviewDelay {} s: the tests wait for reviews; deploy it with short delays \
                 (make deploy-test-stacks sets 30 s; at most {MAX_REVIEW_DELAY_SECS} s)",
                review_delay.as_secs()
            ));
        }
        let [inspector, reviewer] = FUNCTION_SUFFIXES.map(|s| format!("{t}-{s}"));
        for (parameter, function) in [
            ("InspectorFunctions", inspector.clone()),
            ("ReviewerFunctions", reviewer),
        ] {
            let named = main
                .parameters
                .get(parameter)
                .is_some_and(|v| v.contains(&format!(":function:{function}")));
            if !named {
                return Err(format!(
                    "stack {m}: parameter {parameter} does not name the tester's function {function} \
                     (make deploy-test-stacks deploys it so)"
                ));
            }
        }
        Ok(Target {
            ingest_topic_arn: main.output(m, "IngestTopicArn")?,
            report_queue_url: tester.output(t, "ReportQueueUrl")?,
            error_queue_url: tester.output(t, "ErrorQueueUrl")?,
            inspector,
            inspection_delay: main.seconds(m, "InspectionDelay")?,
            review_delay,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(outputs: &[(&str, &str)], parameters: &[(&str, &str)]) -> StackFacts {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        StackFacts {
            status: "UPDATE_COMPLETE".into(),
            outputs: map(outputs),
            parameters: map(parameters),
        }
    }

    fn config() -> Config {
        Config {
            region: "eu-west-1".into(),
            main_stack_name: "ar".into(),
            tester_stack_name: "art".into(),
        }
    }

    const FN: &str = "arn:aws:lambda:eu-west-1:111122223333:function:";

    fn main_facts(review_delay: &str, inspectors: &str) -> StackFacts {
        facts(
            &[(
                "IngestTopicArn",
                "arn:aws:sns:eu-west-1:111122223333:ingest",
            )],
            &[
                ("InspectionDelay", "5"),
                ("ReviewDelay", review_delay),
                ("InspectorFunctions", inspectors),
                ("ReviewerFunctions", &format!("{FN}art-reviewer")),
            ],
        )
    }

    #[test]
    fn the_target_comes_from_both_stacks_and_refuses_a_stack_not_set_up_for_tests() {
        let tester = facts(
            &[
                ("ReportQueueUrl", "https://q/r"),
                ("ErrorQueueUrl", "https://q/e"),
            ],
            &[],
        );
        let ok = Target::from_facts(
            &config(),
            &main_facts("30", &format!("{FN}art-inspector")),
            &tester,
        )
        .unwrap();
        assert_eq!(ok.inspector, "art-inspector");
        assert_eq!(ok.review_delay, Duration::from_secs(30));
        assert_eq!(ok.report_queue_url, "https://q/r");

        let slow = Target::from_facts(
            &config(),
            &main_facts("600", &format!("{FN}art-inspector")),
            &tester,
        )
        .unwrap_err();
        assert!(slow.contains("ReviewDelay 600"), "{slow}");
        let other =
            Target::from_facts(&config(), &main_facts("30", &format!("{FN}intel")), &tester)
                .unwrap_err();
        assert!(other.contains("InspectorFunctions"), "{other}");
        let mut failed = tester.clone();
        failed.status = "UPDATE_ROLLBACK_COMPLETE".into();
        let err = Target::from_facts(
            &config(),
            &main_facts("30", &format!("{FN}art-inspector")),
            &failed,
        )
        .unwrap_err();
        assert!(err.contains("art is UPDATE_ROLLBACK_COMPLETE"), "{err}");
        let empty = Target::from_facts(
            &config(),
            &main_facts("30", &format!("{FN}art-inspector")),
            &facts(&[], &[]),
        )
        .unwrap_err();
        assert!(empty.contains("no output ReportQueueUrl"), "{empty}");
    }
}
