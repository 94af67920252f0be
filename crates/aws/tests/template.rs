//! Checks `template.yaml` (the SAM template at the workspace root) against the
//! code: one function per Lambda binary, each with exactly the environment its
//! binary reads (`config::BINARIES`), IAM that names only resources of the
//! template and never `*`, and the delay state machine's walk.
//!
//! The template is read with `serde_yaml`; CloudFormation's short tags (`!Ref`,
//! `!GetAtt`, `!Sub` …) arrive as tagged values and are rewritten to the long
//! form (`{"Ref": …}`, `{"Fn::GetAtt": [resource, attribute]}`) first, so both
//! spellings are checked alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use alertresponder_aws::config::{self, BINARIES};
use serde_yaml::{Mapping, Value};

const TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"));

/// Variables a function may set although its binary does not declare them:
/// logging, read by the tracing subscriber and the Lambda runtime.
const LOGGING_VARIABLES: &[&str] = &["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL", "AWS_LAMBDA_LOG_FORMAT"];

const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

/// Errors a Lambda task retries: the Lambda service's transient ones, a sandbox
/// that timed out or died (`Sandbox.Timedout`, `Lambda.Unknown`), the invoke call's
/// own timeout, and our binaries' `Retryable` error type.
const TRANSIENT_ERRORS: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
    "Lambda.ClientExecutionTimeoutException",
    "Sandbox.Timedout",
    "Retryable",
];

// ------------------------------------------------------------------ reading

/// The template, short tags rewritten to the long form.
struct Template(Value);

impl Template {
    fn load() -> Self {
        let raw: Value = serde_yaml::from_str(TEMPLATE).expect("template.yaml is not valid YAML");
        Template(long_form(raw))
    }

    fn section(&self, name: &str) -> &Mapping {
        self.0
            .get(name)
            .and_then(Value::as_mapping)
            .unwrap_or_else(|| panic!("template.yaml has no {name} section"))
    }

    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.section("Resources")
            .iter()
            .map(|(k, v)| (k.as_str().expect("resource names are strings"), v))
    }

    fn resource(&self, name: &str) -> Option<&Value> {
        self.section("Resources").get(name)
    }

    fn resource_type(&self, name: &str) -> Option<&str> {
        self.resource(name)?.get("Type")?.as_str()
    }

    fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources()
            .filter(move |(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
    }

    fn parameter(&self, name: &str) -> Option<&Value> {
        self.section("Parameters").get(name)
    }

    /// Resources, parameters and pseudo parameters: what a reference may name.
    fn names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.resources().map(|(n, _)| n.to_string()).collect();
        names.extend(
            self.section("Parameters")
                .keys()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
        names.extend(PSEUDO_PARAMETERS.iter().map(|p| p.to_string()));
        names
    }

    /// Every `AWS::Serverless::Function`, with the Globals merged in as SAM does.
    fn functions(&self) -> Vec<Function<'_>> {
        let globals = self
            .0
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        self.of_type("AWS::Serverless::Function")
            .map(|(name, resource)| {
                let mut properties = globals.clone();
                let own = resource
                    .get("Properties")
                    .and_then(Value::as_mapping)
                    .cloned()
                    .unwrap_or_default();
                for (key, value) in own {
                    // SAM merges maps (Environment.Variables) and replaces the rest.
                    match (properties.get_mut(&key), &value) {
                        (Some(Value::Mapping(global)), Value::Mapping(local)) => {
                            merge(global, local);
                        }
                        _ => {
                            properties.insert(key, value);
                        }
                    }
                }
                let binary = resource
                    .get("Metadata")
                    .and_then(|m| m.get("BuildProperties"))
                    .and_then(|b| b.get("Binary"))
                    .and_then(Value::as_str);
                Function {
                    name,
                    binary,
                    resource,
                    properties: Value::Mapping(properties),
                }
            })
            .collect()
    }

    fn function_of(&self, binary: &str) -> Function<'_> {
        self.functions()
            .into_iter()
            .find(|f| f.binary == Some(binary))
            .unwrap_or_else(|| panic!("no function in template.yaml builds binary {binary}"))
    }

    /// Every IAM statement of the template, with who grants it.
    fn statements(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (name, resource) in self.resources() {
            let ty = resource.get("Type").and_then(Value::as_str).unwrap_or("");
            let properties = resource.get("Properties");
            let documents: Vec<(String, &Value)> = match ty {
                "AWS::IAM::Role" | "AWS::IAM::User" | "AWS::IAM::Group" => properties
                    .and_then(|p| p.get("Policies"))
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let policy = p.get("PolicyName").and_then(Value::as_str).unwrap_or("?");
                        Some((format!("{name} policy {policy}"), p.get("PolicyDocument")?))
                    })
                    .collect(),
                "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => properties
                    .and_then(|p| p.get("PolicyDocument"))
                    .map(|d| vec![(name.to_string(), d)])
                    .unwrap_or_default(),
                "AWS::Serverless::Function" | "AWS::Serverless::StateMachine" => properties
                    .and_then(|p| p.get("Policies"))
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter(|p| p.get("Statement").is_some())
                    .map(|d| (format!("{name} Policies"), d))
                    .collect(),
                _ => Vec::new(),
            };
            for (owner, document) in documents {
                let statements = match document.get("Statement") {
                    Some(Value::Sequence(s)) => s.clone(),
                    Some(single) => vec![single.clone()],
                    None => Vec::new(),
                };
                for statement in statements.iter().flat_map(branches) {
                    out.push((owner.clone(), statement));
                }
            }
        }
        out
    }

    /// The statements of the role a resource runs as (`Role: !GetAtt X.Arn`).
    fn role_statements(&self, resource: &Value, who: &str) -> Vec<Value> {
        let role = resource
            .get("Properties")
            .and_then(|p| p.get("Role"))
            .and_then(|r| r.get("Fn::GetAtt"))
            .and_then(|g| g.get(0))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{who} has no Role: !GetAtt <role>.Arn"));
        self.statements()
            .into_iter()
            .filter(|(owner, _)| owner.starts_with(&format!("{role} ")))
            .map(|(_, s)| s)
            .collect()
    }
}

struct Function<'a> {
    name: &'a str,
    binary: Option<&'a str>,
    resource: &'a Value,
    properties: Value,
}

impl Function<'_> {
    fn variables(&self) -> BTreeMap<String, Value> {
        self.properties
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str().unwrap_or("?").to_string(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn merge(into: &mut Mapping, from: &Mapping) {
    for (key, value) in from {
        match (into.get_mut(key), value) {
            (Some(Value::Mapping(a)), Value::Mapping(b)) => merge(a, b),
            _ => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

/// `!Ref X` → `{Ref: X}`, `!GetAtt A.B` → `{Fn::GetAtt: [A, B]}`, `!Sub s` → `{Fn::Sub: s}` …
fn long_form(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value);
            let (key, inner) = match name {
                "Ref" | "Condition" => (name.to_string(), inner),
                "GetAtt" => {
                    let inner = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((resource, attribute)) => Value::Sequence(vec![
                                Value::String(resource.into()),
                                Value::String(attribute.into()),
                            ]),
                            None => Value::String(s),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), inner)
                }
                other => (format!("Fn::{other}"), inner),
            };
            let mut m = Mapping::new();
            m.insert(Value::String(key), inner);
            Value::Mapping(m)
        }
        Value::Sequence(items) => Value::Sequence(items.into_iter().map(long_form).collect()),
        Value::Mapping(m) => {
            Value::Mapping(m.into_iter().map(|(k, v)| (k, long_form(v))).collect())
        }
        other => other,
    }
}

/// The statements an `Fn::If` may yield (`AWS::NoValue` yields none).
fn branches(statement: &Value) -> Vec<Value> {
    match statement.get("Fn::If").and_then(Value::as_sequence) {
        Some(args) if args.len() == 3 => args[1..]
            .iter()
            .filter(|b| !is_no_value(b))
            .flat_map(branches)
            .collect(),
        _ => vec![statement.clone()],
    }
}

fn is_no_value(v: &Value) -> bool {
    v.get("Ref").and_then(Value::as_str) == Some("AWS::NoValue")
}

/// A string or a list of strings, as a list (IAM `Action`, `Resource`, `ErrorEquals`).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{i:?}"))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The elements of an IAM `Resource` (a value or a list of values).
fn elements(v: Option<&Value>) -> Vec<Value> {
    match v {
        Some(Value::Sequence(items)) => items.iter().flat_map(branches).collect(),
        Some(other) => branches(other),
        None => Vec::new(),
    }
}

/// Names a value refers to: `Ref`, `Fn::GetAtt`, and `${Name}` / `${Name.Attr}` in `Fn::Sub`.
fn references(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_references(v, &mut out);
    out
}

fn collect_references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            if let Some(name) = m.get("Ref").and_then(Value::as_str) {
                out.push(name.to_string());
            }
            if let Some(name) = m
                .get("Fn::GetAtt")
                .and_then(|g| g.get(0))
                .and_then(Value::as_str)
            {
                out.push(name.to_string());
            }
            match m.get("Fn::Sub") {
                Some(Value::String(s)) => out.extend(sub_variables(s)),
                Some(Value::Sequence(args)) => {
                    let local: BTreeSet<String> = args
                        .get(1)
                        .and_then(Value::as_mapping)
                        .map(|vars| {
                            vars.keys()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Some(s) = args.first().and_then(Value::as_str) {
                        out.extend(sub_variables(s).into_iter().filter(|n| !local.contains(n)));
                    }
                    if let Some(vars) = args.get(1) {
                        collect_references(vars, out);
                    }
                }
                _ => {}
            }
            for (k, value) in m {
                if k.as_str() != Some("Fn::Sub") {
                    collect_references(value, out);
                }
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| collect_references(i, out)),
        _ => {}
    }
}

/// `${Name}` and `${Name.Attribute}` in a `Fn::Sub` string (not `${!Literal}`).
fn sub_variables(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        if !inner.starts_with('!') {
            let name = if inner.starts_with("AWS::") {
                inner
            } else {
                inner.split('.').next().unwrap_or(inner)
            };
            out.push(name.to_string());
        }
        rest = &after[end + 1..];
    }
    out
}

/// A resource element as one string: `Ref X` → `${X}`, `GetAtt X.A` → `${X.A}`,
/// `Sub s` → `s`. `None` for forms a policy resource should not take.
fn flatten(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(m) => {
            if let Some(name) = m.get("Ref").and_then(Value::as_str) {
                return Some(format!("${{{name}}}"));
            }
            if let Some(args) = m.get("Fn::GetAtt").and_then(Value::as_sequence) {
                let parts: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
                return Some(format!("${{{}}}", parts.join(".")));
            }
            match m.get("Fn::Sub") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Sequence(args)) => {
                    let mut s = args.first().and_then(Value::as_str)?.to_string();
                    // Local variables inlined as their JSON: two values flatten alike
                    // only when their variables are alike too.
                    if let Some(vars) = args.get(1).and_then(Value::as_mapping) {
                        for (k, v) in vars {
                            let json = serde_json::to_string(v).ok()?;
                            s = s
                                .replace(&format!("${{{}}}", k.as_str()?), &format!("${{{json}}}"));
                        }
                    }
                    Some(s)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The objects of the configuration bundle, as the functions may read them.
const CONFIG_OBJECTS: &str = "arn:${AWS::Partition}:s3:::${ConfigBucket}/${ConfigPrefix}/*";

/// The actions of the `aws` inspector (`crates/plugins/src/inspect/aws.rs`): read-only,
/// and none takes a resource-level permission.
const AWS_INSPECTOR_ACTIONS: &[&str] = &[
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeInstances",
    "iam:GetUser",
    "iam:GetAccessKeyLastUsed",
    "cloudtrail:LookupEvents",
];

/// Whether `statement` is the `aws` inspector's: exactly its read-only actions on "*".
fn is_aws_inspector(statement: &Value) -> bool {
    let mut actions = strings(statement.get("Action"));
    actions.sort();
    let mut expected: Vec<String> = AWS_INSPECTOR_ACTIONS
        .iter()
        .map(|a| a.to_string())
        .collect();
    expected.sort();
    actions == expected
        && statement.get("Sid").and_then(Value::as_str) == Some("InspectAws")
        && elements(statement.get("Resource"))
            .iter()
            .filter_map(flatten)
            .collect::<Vec<_>>()
            == ["*"]
}

/// The EC2 resource types the quarantine's statements may name, each as every such
/// resource of the stack's account and region (`arn:…:ec2:${AWS::Region}:…:<type>/*`).
const QUARANTINE_RESOURCE_TYPES: &[&str] =
    &["vpc", "security-group", "network-interface", "instance"];

/// Whether `statement` is one of the automatic quarantine's (`Sid` `Quarantine…`, EC2
/// calls of `quarantine::ec2` only): the describes on "*" (they take no resource-level
/// permission), the others on every resource of a type in the stack's account and
/// region (the instances to isolate are not known in advance).
fn is_quarantine(statement: &Value) -> bool {
    use alertresponder_aws::quarantine::ec2::{ISOLATE_ACTIONS, READ_ACTIONS};
    let sid = statement.get("Sid").and_then(Value::as_str).unwrap_or("");
    let actions = strings(statement.get("Action"));
    let resources: Vec<String> = elements(statement.get("Resource"))
        .iter()
        .filter_map(flatten)
        .collect();
    let describes = actions.iter().all(|a| READ_ACTIONS.contains(&a.as_str()));
    let ec2_type = |r: &str| {
        r.strip_prefix("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:")
            .and_then(|t| t.strip_suffix("/*"))
            .is_some_and(|t| QUARANTINE_RESOURCE_TYPES.contains(&t))
    };
    sid.starts_with("Quarantine")
        && !actions.is_empty()
        && !resources.is_empty()
        && actions
            .iter()
            .all(|a| READ_ACTIONS.contains(&a.as_str()) || ISOLATE_ACTIONS.contains(&a.as_str()))
        && resources
            .iter()
            .all(|r| if describes { r == "*" } else { ec2_type(r) })
}

/// The delay state machine (the dead-letter one has its own test).
fn state_machine(t: &Template) -> (&str, &Value) {
    let name = "DelayStateMachine";
    let machine = t
        .resource(name)
        .filter(|_| t.resource_type(name) == Some("AWS::Serverless::StateMachine"))
        .unwrap_or_else(|| panic!("template.yaml has no AWS::Serverless::StateMachine {name}"));
    (name, machine)
}

/// The state machine's ARN as the functions build it (they cannot `Ref` it:
/// its definition names them).
fn state_machine_arn_suffix(t: &Template) -> String {
    let (name, machine) = state_machine(t);
    let sm_name = machine
        .get("Properties")
        .and_then(|p| p.get("Name"))
        .and_then(flatten)
        .unwrap_or_else(|| panic!("{name} has no explicit Name: the functions could not name it"));
    format!(":stateMachine:{sm_name}")
}

/// The ARNs of the state machine's executions, as a policy names them (for
/// `states:DescribeExecution`: the scheduler looks at an execution that exists).
fn state_machine_executions_suffix(t: &Template) -> String {
    let suffix = state_machine_arn_suffix(t);
    let name = suffix
        .strip_prefix(":stateMachine:")
        .expect("a stateMachine suffix");
    format!(":execution:{name}:*")
}

/// Whether `flat` (a flattened IAM resource) is every execution of the delay state
/// machine: the one wildcard resource allowed besides a function's versions, and only
/// for `states:DescribeExecution`.
fn is_our_executions(t: &Template, flat: &str) -> bool {
    flat.starts_with("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:")
        && flat.ends_with(&state_machine_executions_suffix(t))
}

fn ref_to(v: Option<&Value>) -> Option<&str> {
    v?.get("Ref")?.as_str()
}

// ------------------------------------------------------------------ tests

#[test]
fn every_function_is_a_binary_of_the_workspace_and_every_binary_has_a_function() {
    let t = Template::load();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for f in t.functions() {
        let Some(binary) = f.binary else {
            problems.push(format!("{}: no Metadata.BuildProperties.Binary", f.name));
            continue;
        };
        if config::spec(binary).is_none() {
            problems.push(format!(
                "{}: builds {binary}, which is not in config::BINARIES",
                f.name
            ));
        }
        if !workspace
            .join("crates")
            .join(binary)
            .join("Cargo.toml")
            .is_file()
        {
            problems.push(format!(
                "{}: crates/{binary}/Cargo.toml does not exist",
                f.name
            ));
        }
        if !seen.insert(binary) {
            problems.push(format!("{}: a second function builds {binary}", f.name));
        }
    }
    for spec in BINARIES {
        if !seen.contains(spec.binary) {
            problems.push(format!(
                "binary {} has no function in template.yaml",
                spec.binary
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_function_sets_exactly_the_environment_its_binary_reads() {
    let t = Template::load();
    let names = t.names();
    let state_machine_suffix = state_machine_arn_suffix(&t);
    let mut problems = Vec::new();
    for f in t.functions() {
        let Some(spec) = f.binary.and_then(config::spec) else {
            continue; // reported by the test above
        };
        let variables = f.variables();
        for required in spec.required {
            if !variables.contains_key(*required) {
                problems.push(format!(
                    "{} ({}): required variable {required} is not set",
                    f.name, spec.binary
                ));
            }
        }
        for (name, value) in &variables {
            let read = spec.required.contains(&name.as_str())
                || spec.optional.contains(&name.as_str())
                || LOGGING_VARIABLES.contains(&name.as_str());
            if !read {
                problems.push(format!(
                    "{} ({}): sets {name}, which the binary does not read",
                    f.name, spec.binary
                ));
            }
            for reference in references(value) {
                if !names.contains(&reference) {
                    problems.push(format!(
                        "{} ({}): {name} refers to {reference}, which is not in the template",
                        f.name, spec.binary
                    ));
                }
            }
        }
        if let Some(arn) = variables.get(config::STATE_MACHINE_ARN) {
            let arn = flatten(arn).unwrap_or_default();
            if !arn.ends_with(&state_machine_suffix) || !arn.contains(":states:") {
                problems.push(format!(
                    "{} ({}): STATE_MACHINE_ARN {arn:?} does not end with {state_machine_suffix:?}",
                    f.name, spec.binary
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_iam_resource_names_a_resource_of_the_template() {
    let t = Template::load();
    let names = t.names();
    let state_machine_suffix = state_machine_arn_suffix(&t);
    let statements = t.statements();
    assert!(
        !statements.is_empty(),
        "template.yaml has no IAM statements"
    );
    let mut problems = Vec::new();
    for (owner, statement) in &statements {
        let sid = statement
            .get("Sid")
            .and_then(Value::as_str)
            .unwrap_or("(no Sid)");
        for element in elements(statement.get("Resource")) {
            let refs = references(&element);
            let own: Vec<&String> = refs
                .iter()
                .filter(|r| !PSEUDO_PARAMETERS.contains(&r.as_str()))
                .collect();
            if own.is_empty() {
                let flat = flatten(&element).unwrap_or_else(|| format!("{element:?}"));
                let is_our_state_machine =
                    flat.contains(":states:") && flat.ends_with(&state_machine_suffix);
                let describes_our_executions = is_our_executions(&t, &flat)
                    && strings(statement.get("Action")) == ["states:DescribeExecution"];
                if !is_our_state_machine
                    && !describes_our_executions
                    && !is_aws_inspector(statement)
                    && !is_quarantine(statement)
                {
                    problems.push(format!(
                        "{owner} {sid}: resource {flat:?} names nothing of the template \
                         (a states ARN must end with {state_machine_suffix:?}, or for \
                         states:DescribeExecution alone with {:?})",
                        state_machine_executions_suffix(&t)
                    ));
                }
            }
            for r in refs {
                if !names.contains(&r) {
                    problems.push(format!(
                        "{owner} {sid}: resource refers to {r}, which is neither a resource \
                         nor a parameter of the template"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_iam_statement_grants_a_wildcard_action_or_resource() {
    let t = Template::load();
    let mut problems = Vec::new();
    for (owner, statement) in t.statements() {
        let sid = statement
            .get("Sid")
            .and_then(Value::as_str)
            .unwrap_or("(no Sid)");
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        for key in ["NotAction", "NotResource", "NotPrincipal"] {
            if statement.get(key).is_some() {
                problems.push(format!("{owner} {sid}: uses {key}"));
            }
        }
        let actions = strings(statement.get("Action"));
        if actions.is_empty() {
            problems.push(format!("{owner} {sid}: no Action"));
        }
        for action in actions {
            if action.contains('*') {
                problems.push(format!("{owner} {sid}: wildcard action {action}"));
            }
        }
        let resources = elements(statement.get("Resource"));
        if resources.is_empty() {
            problems.push(format!("{owner} {sid}: no Resource"));
        }
        for element in resources {
            let Some(flat) = flatten(&element) else {
                problems.push(format!(
                    "{owner} {sid}: resource in an unexpected form {element:?}"
                ));
                continue;
            };
            // Two wildcards are allowed: `${Function.Arn}:*` (a function of the
            // template's versions), and for states:DescribeExecution alone every
            // execution of the delay state machine (the scheduler looks at the one a
            // job's name already has: crates/aws/src/sfn.rs).
            let function_versions = flat
                .strip_suffix(":*")
                .and_then(|body| body.strip_prefix("${"))
                .and_then(|body| body.strip_suffix(".Arn}"))
                .is_some_and(|resource| {
                    matches!(
                        t.resource_type(resource),
                        Some("AWS::Serverless::Function" | "AWS::Lambda::Function")
                    )
                });
            let our_executions = is_our_executions(&t, &flat)
                && strings(statement.get("Action")) == ["states:DescribeExecution"];
            // The configuration bundle's objects (its prefix is content-addressed), and
            // the `aws` inspector's read-only calls (none takes a resource).
            let config_objects =
                flat == CONFIG_OBJECTS && strings(statement.get("Action")) == ["s3:GetObject"];
            if flat.contains('*')
                && !function_versions
                && !our_executions
                && !config_objects
                && !is_aws_inspector(&statement)
                && !is_quarantine(&statement)
            {
                problems.push(format!("{owner} {sid}: wildcard resource {flat:?}"));
            }
        }
    }
    // SAM gives a function without Role a role with AWSLambdaBasicExecutionRole,
    // whose logs statement is on "*".
    for f in t.functions() {
        if f.properties.get("Role").is_none() {
            problems.push(format!(
                "{}: no Role (SAM would attach AWSLambdaBasicExecutionRole, Resource \"*\")",
                f.name
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_policy_anywhere_grants_scan() {
    // The store never scans; SAM's DynamoDB policy templates grant Scan.
    fn walk(v: &Value, path: &str, problems: &mut Vec<String>) {
        match v {
            Value::String(s) if s.to_ascii_lowercase().ends_with(":scan") => {
                problems.push(format!("{path}: {s}"));
            }
            Value::Mapping(m) => {
                for (k, value) in m {
                    let key = k.as_str().unwrap_or("?");
                    if key.starts_with("DynamoDB") && key.ends_with("Policy") {
                        problems.push(format!("{path}.{key}: SAM policy template (grants Scan)"));
                    }
                    walk(value, &format!("{path}.{key}"), problems);
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), problems);
                }
            }
            _ => {}
        }
    }
    let t = Template::load();
    let mut problems = Vec::new();
    walk(&t.0, "template", &mut problems);
    assert!(
        problems.is_empty(),
        "Scan granted at:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_resource_a_function_is_told_about_is_one_its_role_may_use() {
    let t = Template::load();
    let mut problems = Vec::new();
    for f in t.functions() {
        let Some(binary) = f.binary else { continue };
        let statements = t.role_statements(f.resource, f.name);
        let granted = |action: &str, resource: &str| {
            statements.iter().any(|s| {
                s.get("Effect").and_then(Value::as_str) == Some("Allow")
                    && strings(s.get("Action")).iter().any(|a| a == action)
                    && elements(s.get("Resource"))
                        .iter()
                        .filter_map(flatten)
                        .any(|r| r == resource)
            })
        };
        for (variable, value) in f.variables() {
            // A conditional variable (`Fn::If`): each value it may take.
            for value in branches(&value) {
                check_told(&t, &f, binary, &granted, &variable, value, &mut problems);
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `every_resource_a_function_is_told_about_is_one_its_role_may_use` for one value.
fn check_told(
    t: &Template,
    f: &Function<'_>,
    binary: &str,
    granted: &dyn Fn(&str, &str) -> bool,
    variable: &str,
    value: Value,
    problems: &mut Vec<String>,
) {
    if is_no_value(&value) {
        return;
    }
    let needs: &[&str] = match variable {
        // Every function reads reports; errors are only written.
        config::REPORT_TABLE => &["dynamodb:GetItem"],
        config::ERROR_TABLE => &["dynamodb:PutItem"],
        config::TASK_TOPIC_ARN | config::REPORT_TOPIC_ARN | config::ERROR_TOPIC_ARN => {
            &["sns:Publish"]
        }
        // The scheduler starts executions, and looks at one whose name is taken.
        config::STATE_MACHINE_ARN => &["states:StartExecution", "states:DescribeExecution"],
        config::INSPECTOR_FUNCTIONS | config::REVIEWER_FUNCTIONS => &["lambda:InvokeFunction"],
        _ => &[],
    };
    // The IAM resource for a table is its ARN; for a function list, the parameter.
    let resource = match variable {
        config::REPORT_TABLE | config::ERROR_TABLE => ref_to(Some(&value))
            .map(|table| format!("${{{table}.Arn}}"))
            .unwrap_or_default(),
        config::INSPECTOR_FUNCTIONS | config::REVIEWER_FUNCTIONS => value
            .get("Fn::Join")
            .and_then(|j| j.get(1))
            .and_then(|l| ref_to(Some(l)))
            .map(|p| format!("${{{p}}}"))
            .unwrap_or_default(),
        _ => flatten(&value).unwrap_or_default(),
    };
    for action in needs {
        // An execution's ARN: the machine's, `:execution:` for `:stateMachine:`, and
        // the execution's name.
        let resource = if *action == "states:DescribeExecution" {
            let executions = state_machine_executions_suffix(t);
            match resource.rsplit_once(&state_machine_arn_suffix(t)) {
                Some((head, "")) => format!("{head}{executions}"),
                _ => resource.clone(),
            }
        } else {
            resource.clone()
        };
        if !granted(action, &resource) {
            problems.push(format!(
                "{} ({binary}): told {variable} = {resource:?} but its role has no {action} on it",
                f.name
            ));
        }
    }
}

#[test]
fn the_state_machine_walks_wait_dispatch_wait_review_on_every_path() {
    let t = Template::load();
    let (name, machine) = state_machine(&t);
    let props = machine
        .get("Properties")
        .expect("state machine has Properties");
    assert_eq!(
        props.get("Type").and_then(Value::as_str),
        Some("STANDARD"),
        "{name}: Type must be STANDARD (Wait states of hours; exactly-once steps)"
    );
    // Its Name (from the stack ID, so that any stack name fits) is checked by
    // the_delay_state_machine_name_derives_from_the_stack_id_the_same_way_everywhere.
    assert!(props.get("Name").is_some(), "{name}: no Name");
    let definition = props
        .get("Definition")
        .unwrap_or_else(|| panic!("{name}: no inline Definition"));
    assert_eq!(
        definition.get("StartAt").and_then(Value::as_str),
        Some("WaitInspectionDelay"),
        "{name}: StartAt"
    );
    let states = definition
        .get("States")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("{name}: no States"));
    let state = |s: &str| -> &Value {
        states
            .get(s)
            .unwrap_or_else(|| panic!("{name}: no state {s}"))
    };
    let field = |s: &str, f: &str| -> Option<String> {
        state(s).get(f).and_then(|v| match v {
            Value::String(x) => Some(x.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        })
    };
    let expect = |s: &str, f: &str, want: &str| {
        assert_eq!(
            field(s, f).as_deref(),
            Some(want),
            "{name}: state {s} field {f}"
        );
    };

    let yaml = |s: &str| -> Value { serde_yaml::from_str(s).expect("test YAML") };

    // Four billed transitions on every path: no Choice (the dispatcher always answers
    // a plan; version 0 makes the Review state return at once), no state of its own
    // for compiling or publishing.
    let mut listed: Vec<&str> = states.keys().filter_map(Value::as_str).collect();
    listed.sort_unstable();
    let mut wanted = vec![
        "WaitInspectionDelay",
        "Dispatch",
        "WaitReviewDelay",
        "Review",
        "PublishError",
        "Failed",
    ];
    wanted.sort_unstable();
    assert_eq!(listed, wanted, "{name}: the states");
    for (s, v) in states {
        assert_ne!(
            v.get("Type").and_then(Value::as_str),
            Some("Choice"),
            "{name}: {s:?} is a Choice: a billed transition the data already decides"
        );
    }

    // The walk.
    expect("WaitInspectionDelay", "Type", "Wait");
    expect("WaitInspectionDelay", "TimestampPath", "$.dispatch_at");
    expect("WaitInspectionDelay", "Next", "Dispatch");
    expect("Dispatch", "Next", "WaitReviewDelay");
    expect("WaitReviewDelay", "Type", "Wait");
    expect("WaitReviewDelay", "TimestampPath", "$.review.review_at");
    expect("WaitReviewDelay", "Next", "Review");
    expect("Review", "End", "true");
    assert!(
        state("Review").get("Next").is_none(),
        "{name}: Review ends the walk"
    );

    // The Lambda steps: function, payload, what is kept, retry, catch.
    let payload = |s: &str| -> Value {
        let p = state(s).get("Parameters").expect("Parameters");
        p.get("Payload.$")
            .or_else(|| p.get("Payload"))
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {s} passes no Payload"))
    };
    let steps = [
        ("Dispatch", "DispatcherArn", "dispatcher", "$.review"),
        (
            "Review",
            "ReviewerInvokerArn",
            "reviewer-invoker",
            "$.result",
        ),
    ];
    for (step, substitution, _, result_path) in steps {
        expect(step, "Type", "Task");
        expect(step, "Resource", "arn:${Partition}:states:::lambda:invoke");
        expect(step, "ResultPath", result_path);
        assert_eq!(
            state(step)
                .get("Parameters")
                .and_then(|p| p.get("FunctionName"))
                .and_then(Value::as_str),
            Some(format!("${{{substitution}}}").as_str()),
            "{name}: {step} invokes the wrong function"
        );
        let retry = state(step)
            .get("Retry")
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("{name}: {step} has no Retry"));
        let transient = retry
            .iter()
            .find(|r| {
                strings(r.get("ErrorEquals"))
                    .iter()
                    .any(|e| e == "Retryable")
            })
            .unwrap_or_else(|| panic!("{name}: {step} does not retry Retryable"));
        let mut errors = strings(transient.get("ErrorEquals"));
        errors.sort();
        let mut want: Vec<String> = TRANSIENT_ERRORS.iter().map(|e| e.to_string()).collect();
        want.sort();
        assert_eq!(errors, want, "{name}: {step} retries the wrong errors");
        for r in retry {
            for e in strings(r.get("ErrorEquals")) {
                assert!(
                    !["Invalid", "NotFound", "Permanent", "States.ALL"].contains(&e.as_str()),
                    "{name}: {step} retries {e}, which is not transient"
                );
            }
        }
        assert_eq!(
            transient.get("IntervalSeconds").and_then(Value::as_u64),
            Some(2),
            "{step}"
        );
        assert_eq!(
            transient.get("MaxAttempts").and_then(Value::as_u64),
            Some(12),
            "{step}"
        );
        assert_eq!(
            transient.get("BackoffRate").and_then(Value::as_f64),
            Some(2.0),
            "{step}"
        );
        assert_eq!(
            transient.get("JitterStrategy").and_then(Value::as_str),
            Some("FULL"),
            "{step}"
        );
        let catch = state(step)
            .get("Catch")
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| panic!("{name}: {step} has no Catch"));
        assert_eq!(
            catch,
            &vec![yaml(
                "{ErrorEquals: [States.ALL], ResultPath: $.error, Next: PublishError}"
            )],
            "{name}: {step} must catch everything into $.error and go to PublishError"
        );
    }

    // Only the Review waits for inspections: a retrier of its own for
    // InspectionsPending, without jitter, whose waits add up to at least the longest
    // review wait the function accepts (config::MAX_REVIEW_WAIT), so that a lost task
    // ends in a review with the inspection timed out, never in PublishError.
    let dispatch_retry = state("Dispatch")
        .get("Retry")
        .and_then(Value::as_sequence)
        .expect("Dispatch Retry");
    assert_eq!(dispatch_retry.len(), 1, "{name}: Dispatch retriers");
    let review_retry = state("Review")
        .get("Retry")
        .and_then(Value::as_sequence)
        .expect("Review Retry");
    assert_eq!(review_retry.len(), 2, "{name}: Review retriers");
    let pending = review_retry
        .iter()
        .find(|r| strings(r.get("ErrorEquals")) == ["InspectionsPending"])
        .unwrap_or_else(|| panic!("{name}: Review has no retrier of InspectionsPending alone"));
    assert_eq!(
        pending,
        &yaml("{ErrorEquals: [InspectionsPending], IntervalSeconds: 10, MaxAttempts: 14, BackoffRate: 1.5, MaxDelaySeconds: 60}"),
        "{name}: Review's InspectionsPending retrier"
    );
    let budget = retry_budget_seconds(pending);
    assert!(
        budget >= config::MAX_REVIEW_WAIT.as_secs_f64(),
        "{name}: Review waits for inspections {budget} s in all, under the {} s \
         REVIEW_WAIT_SECONDS may ask",
        config::MAX_REVIEW_WAIT.as_secs()
    );
    let max_wait = t
        .parameter("ReviewWait")
        .and_then(|p| p.get("MaxValue"))
        .and_then(Value::as_u64)
        .expect("ReviewWait has a MaxValue");
    assert_eq!(
        max_wait,
        config::MAX_REVIEW_WAIT.as_secs(),
        "ReviewWait's MaxValue is the longest wait the retrier covers"
    );
    // The error name is the one the binary reports.
    let kind =
        serde_json::to_value(alertresponder_aws::handlers::EdgeErrorKind::InspectionsPending)
            .expect("serialises");
    assert_eq!(kind, serde_json::json!("InspectionsPending"));

    // Payloads and selectors: the fields of the binaries' own types, identifiers only.
    assert_eq!(
        payload("Dispatch"),
        Value::String("$".into()),
        "Dispatch payload: the execution input"
    );
    assert_eq!(
        payload("Review"),
        yaml(
            r#"{"report_id.$": "$.review.report_id", "version.$": "$.review.version", "review_at.$": "$.review.review_at", "publisher.$": "$$.Execution.Name"}"#
        ),
        "Review payload"
    );
    let selector = |s: &str| state(s).get("ResultSelector").cloned();
    assert_eq!(
        selector("Dispatch"),
        Some(yaml(
            r#"{"report_id.$": "$.Payload.report_id", "version.$": "$.Payload.version", "review_at.$": "$.Payload.review_at"}"#
        ))
    );
    assert_eq!(
        selector("Review"),
        Some(yaml(
            r#"{"published.$": "$.Payload.published", "version.$": "$.Payload.version", "severity.$": "$.Payload.severity"}"#
        ))
    );
    // …and those are the fields the binaries read and write.
    let keys = |v: serde_json::Value| -> BTreeSet<String> {
        v.as_object().expect("an object").keys().cloned().collect()
    };
    let plan = alertresponder_aws::handlers::ReviewPlan {
        report_id: "r".into(),
        version: 1,
        review_at: chrono::Utc::now(),
    };
    let state_keys = |s: &str, what: &str| -> BTreeSet<String> {
        state(s)
            .get(what)
            .and_then(Value::as_mapping)
            .expect("a mapping")
            .keys()
            .filter_map(Value::as_str)
            .filter(|k| *k != "FunctionName")
            .map(|k| k.trim_end_matches(".$").to_string())
            .collect()
    };
    assert_eq!(
        state_keys("Dispatch", "ResultSelector"),
        keys(serde_json::to_value(&plan).expect("plan")),
        "{name}: Dispatch keeps what the dispatcher answers (ReviewPlan)"
    );
    let input = alertresponder_aws::handlers::ReviewInput {
        report_id: plan.report_id.clone(),
        version: plan.version,
        review_at: plan.review_at,
        publisher: "e".into(),
    };
    let review_payload: BTreeSet<String> = payload("Review")
        .as_mapping()
        .expect("Review payload is a mapping")
        .keys()
        .filter_map(Value::as_str)
        .map(|k| k.trim_end_matches(".$").to_string())
        .collect();
    assert_eq!(
        review_payload,
        keys(serde_json::to_value(&input).expect("input")),
        "{name}: Review passes what the reviewer invoker reads (ReviewInput)"
    );
    let output = alertresponder_aws::handlers::ReviewOutput {
        published: true,
        version: 1,
        severity: None,
    };
    assert_eq!(
        state_keys("Review", "ResultSelector"),
        keys(serde_json::to_value(&output).expect("output")),
        "{name}: Review keeps what the reviewer invoker answers (ReviewOutput)"
    );

    // Failures: published by Step Functions itself, then the execution fails.
    expect("PublishError", "Type", "Task");
    expect(
        "PublishError",
        "Resource",
        "arn:${Partition}:states:::sns:publish",
    );
    expect("PublishError", "Next", "Failed");
    assert_eq!(
        state("PublishError").get("Parameters").cloned(),
        Some(yaml(
            r#"{TopicArn: "${ErrorTopicArn}", "Message.$": "$", MessageAttributes: {stage: {DataType: String, StringValue: state-machine}}}"#
        )),
        "{name}: PublishError parameters"
    );
    expect("Failed", "Type", "Fail");
    expect("Failed", "Error", "AlertResponder.StepFailed");

    // Substitutions name the functions that build the right binaries, and the error topic.
    let substitutions = props
        .get("DefinitionSubstitutions")
        .unwrap_or_else(|| panic!("{name}: no DefinitionSubstitutions"));
    let mut invoke_allowed: BTreeSet<String> = BTreeSet::new();
    for (_, substitution, binary, _) in steps {
        let function = t.function_of(binary);
        let value = substitutions
            .get(substitution)
            .unwrap_or_else(|| panic!("{name}: no substitution {substitution}"));
        assert_eq!(
            value,
            &yaml(&format!("{{Fn::GetAtt: [{}, Arn]}}", function.name)),
            "{name}: {substitution} must be the Arn of {} (binary {binary})",
            function.name
        );
        invoke_allowed.insert(format!("${{{}.Arn}}", function.name));
        invoke_allowed.insert(format!("${{{}.Arn}}:*", function.name));
    }
    let error_topic = ref_to(substitutions.get("ErrorTopicArn"))
        .unwrap_or_else(|| panic!("{name}: ErrorTopicArn must be a Ref to the error topic"));
    assert_eq!(
        t.resource_type(error_topic),
        Some("AWS::SNS::Topic"),
        "ErrorTopicArn"
    );
    let mut substitution_names: Vec<&str> = substitutions
        .as_mapping()
        .map(|m| m.keys().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    substitution_names.sort_unstable();
    assert_eq!(
        substitution_names,
        [
            "DispatcherArn",
            "ErrorTopicArn",
            "Partition",
            "ReviewerInvokerArn"
        ],
        "{name}: DefinitionSubstitutions"
    );
    assert_eq!(
        ref_to(substitutions.get("Partition")),
        Some("AWS::Partition"),
        "{name}: the Partition substitution"
    );

    // Its role: invoke exactly the two functions, publish to the error topic, nothing else.
    let statements = t.role_statements(machine, name);
    let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &statements {
        for action in strings(s.get("Action")) {
            granted
                .entry(action)
                .or_default()
                .extend(elements(s.get("Resource")).iter().filter_map(flatten));
        }
    }
    let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    want.insert("lambda:InvokeFunction".into(), invoke_allowed);
    want.insert(
        "sns:Publish".into(),
        [format!("${{{error_topic}}}")].into_iter().collect(),
    );
    assert_eq!(granted, want, "{name}: its role's grants");
}

/// Fields a delay execution's state may hold besides the execution input (a job and
/// two times): identifiers, times and small scalars, never a report.
const STATE_FIELDS: &[&str] = &["report_id", "version", "review_at", "published", "severity"];

#[test]
fn no_state_carries_a_report_only_identifiers() {
    // A report can pass Step Functions' 256 KiB limit (States.DataLimitExceeded, which
    // no Catch sees): the state holds the execution input (a job: identifiers and
    // times), what each step keeps of its answer (named fields, identifiers only), and
    // a caught error. Every path a state reads or keeps is checked here.
    let t = Template::load();
    let (name, machine) = state_machine(&t);
    let states = machine
        .get("Properties")
        .and_then(|p| p.get("Definition"))
        .and_then(|d| d.get("States"))
        .and_then(Value::as_mapping)
        .expect("States");
    // Every `key.$: path` of a Parameters / ResultSelector template, nested included.
    fn paths(v: &Value, out: &mut Vec<(String, String)>) {
        if let Some(m) = v.as_mapping() {
            for (k, value) in m {
                let key = k.as_str().unwrap_or("?");
                match (key.strip_suffix(".$"), value.as_str()) {
                    (Some(field), Some(path)) => out.push((field.to_string(), path.to_string())),
                    _ => paths(value, out),
                }
            }
        }
    }
    let mut problems = Vec::new();
    let mut tasks = 0;
    for (s, state) in states {
        let s = s.as_str().unwrap_or("?");
        let ty = state.get("Type").and_then(Value::as_str).unwrap_or("");
        // Only these types exist in the machine; each adds nothing but what is checked.
        if !["Wait", "Task", "Fail"].contains(&ty) {
            problems.push(format!(
                "{s}: a {ty} state (Pass/Map/Parallel could build data)"
            ));
        }
        if ty != "Task" {
            continue;
        }
        tasks += 1;
        let is_lambda = state
            .get("Resource")
            .and_then(Value::as_str)
            .is_some_and(|r| r.ends_with(":states:::lambda:invoke"));
        // What a Lambda answers enters the state only through a ResultSelector of
        // identifier fields (never the whole Payload).
        if is_lambda {
            let Some(selector) = state.get("ResultSelector") else {
                problems.push(format!(
                    "{s}: no ResultSelector: the whole answer enters the state"
                ));
                continue;
            };
            let mut kept = Vec::new();
            paths(selector, &mut kept);
            for (field, path) in kept {
                let ok =
                    STATE_FIELDS.contains(&field.as_str()) && path == format!("$.Payload.{field}");
                if !ok {
                    problems.push(format!("{s}: ResultSelector keeps {field} = {path}"));
                }
            }
            let result_path = state.get("ResultPath").and_then(Value::as_str);
            if !matches!(result_path, Some(p) if p != "$" && p.starts_with("$.")) {
                problems.push(format!(
                    "{s}: ResultPath {result_path:?}: the answer must go beside the input"
                ));
            }
        } else if state.get("ResultPath").is_some_and(|p| !p.is_null())
            && state.get("Next").and_then(Value::as_str) != Some("Failed")
        {
            // PublishError: SNS answers a message ID, and the execution fails next.
            problems.push(format!(
                "{s}: a service answer kept in a state that goes on"
            ));
        }
        // What a step reads: the execution input, an identifier of the plan, the
        // execution's name; PublishError publishes the whole (bounded) state.
        let mut read = Vec::new();
        paths(state.get("Parameters").unwrap_or(&Value::Null), &mut read);
        for (field, path) in read {
            let ok = match path.as_str() {
                "$" => s == "Dispatch" || s == "PublishError",
                "$$.Execution.Name" => true,
                p => p
                    .strip_prefix("$.review.")
                    .is_some_and(|f| STATE_FIELDS.contains(&f) && f == field),
            };
            if !ok {
                problems.push(format!("{s}: Parameters read {field} = {path}"));
            }
        }
        if let Some(catch) = state.get("Catch").and_then(Value::as_sequence) {
            for c in catch {
                if c.get("ResultPath").and_then(Value::as_str) != Some("$.error") {
                    problems.push(format!(
                        "{s}: a Catch keeps the error elsewhere than $.error"
                    ));
                }
            }
        }
    }
    assert_eq!(tasks, 3, "{name}: Dispatch, Review and PublishError");
    // The only input the Dispatch passes whole is the execution input: a job (of
    // identifiers) and two times, never a report.
    let input = alertresponder_aws::sfn::DelayInput {
        job: alertresponder_core::Job::Review {
            report_id: "r".repeat(36),
            version: u32::MAX,
        },
        dispatch_at: chrono::Utc::now(),
        review_at: Some(chrono::Utc::now()),
    };
    let json = serde_json::to_string(&input).expect("input");
    assert!(json.len() < 1024, "{json}");
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
}

/// A parameter's value in a deployment: `given`, else its Default ("" without one);
/// a CommaDelimitedList as a list.
fn parameter_value(t: &Template, name: &str, given: &[(&str, Value)]) -> Value {
    let value = given
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| {
            t.parameter(name)
                .and_then(|p| p.get("Default"))
                .cloned()
                .unwrap_or(Value::String(String::new()))
        });
    let is_list = t
        .parameter(name)
        .and_then(|p| p.get("Type"))
        .and_then(Value::as_str)
        == Some("CommaDelimitedList");
    match value {
        Value::String(s) if is_list => Value::Sequence(
            s.split(',')
                .map(|x| Value::String(x.trim().to_string()))
                .collect(),
        ),
        other => other,
    }
}

/// What a condition's operand evaluates to: a parameter (`Ref`), `Fn::Join`, a literal.
fn condition_operand(t: &Template, v: &Value, given: &[(&str, Value)]) -> Value {
    if let Some(name) = v.get("Ref").and_then(Value::as_str) {
        assert!(
            t.parameter(name).is_some(),
            "a condition refers to {name}, not a parameter"
        );
        return parameter_value(t, name, given);
    }
    if let Some(args) = v.get("Fn::Join").and_then(Value::as_sequence) {
        let with = args[0].as_str().expect("Fn::Join delimiter");
        let parts = match condition_operand(t, &args[1], given) {
            Value::Sequence(items) => items,
            other => panic!("Fn::Join of {other:?}"),
        };
        let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
        return Value::String(parts.join(with));
    }
    v.clone()
}

/// Whether condition `name` of the template holds with parameters `given`.
fn condition_holds(t: &Template, name: &str, given: &[(&str, Value)]) -> bool {
    let c = t
        .section("Conditions")
        .get(name)
        .unwrap_or_else(|| panic!("no condition {name}"));
    condition_value(t, c, given)
}

fn condition_value(t: &Template, c: &Value, given: &[(&str, Value)]) -> bool {
    let args = |f: &str| c.get(f).and_then(Value::as_sequence);
    if let Some(a) = args("Fn::Not") {
        return !condition_value(t, &a[0], given);
    }
    if let Some(a) = args("Fn::And") {
        return a.iter().all(|x| condition_value(t, x, given));
    }
    if let Some(a) = args("Fn::Or") {
        return a.iter().any(|x| condition_value(t, x, given));
    }
    if let Some(a) = args("Fn::Equals") {
        return condition_operand(t, &a[0], given) == condition_operand(t, &a[1], given);
    }
    if let Some(other) = c.get("Condition").and_then(Value::as_str) {
        return condition_holds(t, other, given);
    }
    panic!("a condition this test cannot evaluate: {c:?}")
}

/// `v` with every `Fn::If` resolved for parameters `given` (`AWS::NoValue` left out).
fn resolve_conditions(t: &Template, v: &Value, given: &[(&str, Value)]) -> Value {
    match v {
        Value::Mapping(m) => {
            if let Some(args) = m.get("Fn::If").and_then(Value::as_sequence) {
                let condition = args[0].as_str().expect("Fn::If names a condition");
                let branch = if condition_holds(t, condition, given) {
                    &args[1]
                } else {
                    &args[2]
                };
                return resolve_conditions(t, branch, given);
            }
            Value::Mapping(
                m.iter()
                    .map(|(k, value)| (k.clone(), resolve_conditions(t, value, given)))
                    .filter(|(_, value)| !is_no_value(value))
                    .collect(),
            )
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .iter()
                .map(|i| resolve_conditions(t, i, given))
                .filter(|i| !is_no_value(i))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether resource `name` exists in a deployment with parameters `given`.
fn deployed(t: &Template, name: &str, given: &[(&str, Value)]) -> bool {
    t.resource(name)
        .and_then(|r| r.get("Condition"))
        .and_then(Value::as_str)
        .is_none_or(|c| condition_holds(t, c, given))
}

#[test]
fn tables_have_ttl_pitr_and_encryption() {
    let t = Template::load();
    let yaml = |s: &str| -> Value { serde_yaml::from_str(s).expect("test YAML") };
    let tables: Vec<_> = t.of_type("AWS::DynamoDB::Table").collect();
    let mut names: Vec<&str> = tables.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    assert_eq!(names, ["ErrorTable", "ReportTable"], "the DynamoDB tables");
    for (name, table) in tables {
        let p = table
            .get("Properties")
            .unwrap_or_else(|| panic!("{name}: no Properties"));
        let check = |key: &str, want: &str| {
            assert_eq!(p.get(key), Some(&yaml(want)), "{name}: {key}");
        };
        check("BillingMode", "PAY_PER_REQUEST");
        check(
            "KeySchema",
            "[{AttributeName: pk, KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]",
        );
        check(
            "AttributeDefinitions",
            "[{AttributeName: pk, AttributeType: S}, {AttributeName: sk, AttributeType: S}]",
        );
        check(
            "TimeToLiveSpecification",
            "{AttributeName: expires_at, Enabled: true}",
        );
        check(
            "PointInTimeRecoverySpecification",
            "{PointInTimeRecoveryEnabled: true}",
        );
        // The AWS owned key unless the stack is given one (a customer key adds KMS
        // request charges to every read and write).
        let sse = p.get("SSESpecification").expect("SSESpecification");
        let with_key = [(
            "TableKmsKeyArn",
            Value::String("arn:aws:kms:eu-west-1:123456789012:key/0123abcd-4567".into()),
        )];
        assert_eq!(
            resolve_conditions(&t, sse, &[]),
            yaml("{SSEEnabled: false}"),
            "{name}: SSESpecification by default"
        );
        assert_eq!(
            resolve_conditions(&t, sse, &with_key),
            yaml("{SSEEnabled: true, SSEType: KMS, KMSMasterKeyId: {Ref: TableKmsKeyArn}}"),
            "{name}: SSESpecification with TableKmsKeyArn"
        );
        assert!(
            p.get("GlobalSecondaryIndexes").is_none(),
            "{name}: no index (IAM names the table only)"
        );
    }
}

#[test]
fn topics_are_exported() {
    let t = Template::load();
    let outputs = t.section("Outputs");
    let wanted = [
        ("IngestTopicArn", "AWS::SNS::Topic"),
        ("TaskTopicArn", "AWS::SNS::Topic"),
        ("ReportTopicArn", "AWS::SNS::Topic"),
        ("ErrorTopicArn", "AWS::SNS::Topic"),
        ("ReportTableName", "AWS::DynamoDB::Table"),
        ("StateMachineArn", "AWS::Serverless::StateMachine"),
    ];
    for (output, ty) in wanted {
        let o = outputs
            .get(output)
            .unwrap_or_else(|| panic!("no output {output}"));
        let export = o
            .get("Export")
            .and_then(|e| e.get("Name"))
            .and_then(flatten);
        assert_eq!(
            export.as_deref(),
            Some(format!("${{AWS::StackName}}-{output}").as_str()),
            "output {output}: export name"
        );
        let target =
            ref_to(o.get("Value")).unwrap_or_else(|| panic!("output {output}: Value is not a Ref"));
        assert_eq!(
            t.resource_type(target),
            Some(ty),
            "output {output}: refers to {target}"
        );
    }
    // What the outputs point at is wired: the receptor listens to the ingest topic
    // (the harness and the emitter fan-out: see
    // the_harness_and_the_emitter_fan_out_are_subscribed_only_when_they_have_work).
    let ingest = ref_to(outputs.get("IngestTopicArn").and_then(|o| o.get("Value"))).unwrap_or("");
    {
        let (binary, topic) = ("receptor", ingest);
        let f = t.function_of(binary);
        let events = f.properties.get("Events").and_then(Value::as_mapping);
        let subscribed = events.into_iter().flatten().any(|(_, e)| {
            e.get("Type").and_then(Value::as_str) == Some("SNS")
                && ref_to(e.get("Properties").and_then(|p| p.get("Topic"))) == Some(topic)
        });
        assert!(
            subscribed,
            "{} ({binary}) has no SNS event from {topic}",
            f.name
        );
    }
}

#[test]
fn the_harness_and_the_emitter_fan_out_are_subscribed_only_when_they_have_work() {
    // No inspector: no task is published (the dispatcher has no TASK_TOPIC_ARN and marks
    // a claim inspected at once) and the harness is not subscribed. No built-in emitter:
    // the fan-out is not subscribed to the report topic. Neither then costs anything.
    let t = Template::load();
    let outputs = t.section("Outputs");
    let topic_of = |output: &str| {
        ref_to(outputs.get(output).and_then(|o| o.get("Value")))
            .unwrap_or_else(|| panic!("output {output} is not a Ref"))
            .to_string()
    };
    let inspector = [(
        "InspectorFunctions",
        Value::String("arn:aws:lambda:eu-west-1:123456789012:function:inspector".into()),
    )];
    let config_inspector = [("ConfigInspectors", Value::String("2".into()))];
    let webhook = [("ConfigEmitters", Value::String("1".into()))];
    type Given<'a> = &'a [(&'a str, Value)];
    let cases: [(&str, String, Given); 3] = [
        ("inspector-harness", topic_of("TaskTopicArn"), &inspector),
        (
            "inspector-harness",
            topic_of("TaskTopicArn"),
            &config_inspector,
        ),
        ("emitter-fanout", topic_of("ReportTopicArn"), &webhook),
    ];
    for (binary, topic, given) in cases {
        let f = t.function_of(binary);
        let who = format!("{} ({binary})", f.name);
        assert!(
            f.properties.get("Events").is_none(),
            "{who}: a SAM event source cannot be conditional: subscribe it explicitly"
        );
        let subscriptions: Vec<&str> = t
            .of_type("AWS::SNS::Subscription")
            .filter(|(_, s)| {
                s.get("Properties")
                    .and_then(|p| p.get("Endpoint"))
                    .and_then(|e| e.get("Fn::GetAtt"))
                    .and_then(|g| g.get(0))
                    .and_then(Value::as_str)
                    == Some(f.name)
            })
            .map(|(n, _)| n)
            .collect();
        assert_eq!(subscriptions.len(), 1, "{who}: subscriptions");
        let subscription = subscriptions[0];
        let p = t
            .resource(subscription)
            .and_then(|r| r.get("Properties"))
            .expect("Properties");
        assert_eq!(
            ref_to(p.get("TopicArn")),
            Some(topic.as_str()),
            "{subscription}"
        );
        assert_eq!(
            p.get("Protocol").and_then(Value::as_str),
            Some("lambda"),
            "{subscription}"
        );
        let permissions: Vec<&str> = t
            .of_type("AWS::Lambda::Permission")
            .filter(|(_, r)| {
                let p = r.get("Properties");
                let get = |k: &str| p.and_then(|p| p.get(k));
                ref_to(get("FunctionName")) == Some(f.name)
                    && get("Principal").and_then(Value::as_str) == Some("sns.amazonaws.com")
            })
            .map(|(n, _)| n)
            .collect();
        assert_eq!(permissions.len(), 1, "{who}: permissions for SNS");
        let permission = t
            .resource(permissions[0])
            .and_then(|r| r.get("Properties"))
            .expect("Properties");
        assert_eq!(
            permission.get("Action").and_then(Value::as_str),
            Some("lambda:InvokeFunction")
        );
        assert_eq!(
            ref_to(permission.get("SourceArn")),
            Some(topic.as_str()),
            "{}: scoped to {topic}",
            permissions[0]
        );
        // Both exist exactly when there is work, and only then.
        for resource in [subscription, permissions[0]] {
            assert!(
                !deployed(&t, resource, &[]),
                "{resource}: deployed with the defaults, where {binary} has nothing to do"
            );
            assert!(
                deployed(&t, resource, given),
                "{resource}: not deployed with {given:?}"
            );
        }
    }
    // The dispatcher publishes tasks exactly when the harness is subscribed.
    let dispatcher = t.function_of("dispatcher");
    let task_topic = dispatcher
        .variables()
        .get(config::TASK_TOPIC_ARN)
        .cloned()
        .expect("the dispatcher's TASK_TOPIC_ARN");
    let without = resolve_conditions(&t, &task_topic, &[]);
    assert!(
        is_no_value(&without),
        "dispatcher: TASK_TOPIC_ARN is {without:?} without inspectors: a task nobody takes"
    );
    for given in [&inspector[..], &config_inspector[..]] {
        let with = resolve_conditions(&t, &task_topic, given);
        assert_eq!(
            ref_to(Some(&with)),
            Some(topic_of("TaskTopicArn").as_str()),
            "dispatcher: TASK_TOPIC_ARN with {given:?}"
        );
    }
    // The emitter fan-out is no state of the delay state machine: nothing else invokes it.
    let fanout = t.function_of("emitter-fanout").name;
    let (name, machine) = state_machine(&t);
    assert!(
        !references(machine).iter().any(|r| r == fanout),
        "{name} refers to {fanout}"
    );
}

/// The stage of an error record of each asynchronously invoked function, as the
/// code names it: the receptor's `receive` (`handlers::receive`), the harness's
/// `inspect` (`Job::stage`).
const DEAD_LETTER_STAGES: &[(&str, &str)] =
    &[("receptor", "receive"), ("inspector-harness", "inspect")];

/// The statements of the role `Fn::GetAtt [role, Arn]` names.
fn statements_of_role(t: &Template, role_arn: Option<&Value>) -> Vec<Value> {
    let role = role_arn
        .and_then(|r| r.get("Fn::GetAtt"))
        .and_then(|g| g.get(0))
        .and_then(Value::as_str)
        .expect("a role given as Fn::GetAtt [role, Arn]");
    t.statements()
        .into_iter()
        .filter(|(owner, _)| owner.starts_with(&format!("{role} ")))
        .map(|(_, s)| s)
        .collect()
}

fn grants(statements: &[Value], action: &str, resource: &str) -> bool {
    statements.iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && strings(s.get("Action")).iter().any(|a| a == action)
            && elements(s.get("Resource"))
                .iter()
                .filter_map(flatten)
                .any(|r| r == resource)
    })
}

#[test]
fn an_event_a_function_fails_for_good_reaches_the_error_topic_with_its_stage() {
    let t = Template::load();
    let yaml = |s: &str| -> Value { serde_yaml::from_str(s).expect("test YAML") };
    let error_topic = ref_to(
        t.section("Outputs")
            .get("ErrorTopicArn")
            .and_then(|o| o.get("Value")),
    )
    .expect("ErrorTopicArn output is a Ref");
    for (binary, stage) in DEAD_LETTER_STAGES {
        let f = t.function_of(binary);
        let who = format!("{} ({binary})", f.name);
        // Lambda's DeadLetterQueue, and an OnFailure destination on SNS, publish with
        // Lambda's attributes only: the record goes through EventBridge instead.
        assert!(
            f.properties.get("DeadLetterQueue").is_none(),
            "{who}: a DeadLetterQueue message carries no stage attribute"
        );
        let on_failure = f
            .properties
            .get("EventInvokeConfig")
            .and_then(|c| c.get("DestinationConfig"))
            .and_then(|d| d.get("OnFailure"))
            .unwrap_or_else(|| {
                panic!("{who} is invoked by SNS: it needs an OnFailure destination")
            });
        assert_eq!(
            on_failure.get("Type").and_then(Value::as_str),
            Some("EventBridge"),
            "{who}: OnFailure type"
        );
        let bus = on_failure
            .get("Destination")
            .and_then(|d| d.get("Fn::GetAtt"))
            .and_then(|g| g.get(0))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{who}: OnFailure destination is not a bus of the template"));
        assert_eq!(
            t.resource_type(bus),
            Some("AWS::Events::EventBus"),
            "{who}: {bus}"
        );
        assert!(
            grants(
                &t.role_statements(f.resource, f.name),
                "events:PutEvents",
                &format!("${{{bus}.Arn}}")
            ),
            "{who}: its role may not put events on {bus}"
        );

        // One rule on that bus takes this function's failures…
        let function_arn = yaml(&format!("{{Fn::GetAtt: [{}, Arn]}}", f.name));
        let rules: Vec<(&str, &Value)> = t
            .of_type("AWS::Events::Rule")
            .filter(|(_, r)| {
                let p = r.get("Properties");
                let on_bus = ref_to(p.and_then(|p| p.get("EventBusName"))) == Some(bus);
                let arns = p
                    .and_then(|p| p.get("EventPattern"))
                    .and_then(|e| e.get("detail"))
                    .and_then(|d| d.get("requestContext"))
                    .and_then(|c| c.get("functionArn"))
                    .and_then(Value::as_sequence);
                on_bus && arns.is_some_and(|a| a.contains(&function_arn))
            })
            .collect();
        assert_eq!(rules.len(), 1, "{who}: rules on {bus} for its failures");
        let (rule, rule_props) = (
            rules[0].0,
            rules[0].1.get("Properties").expect("Properties"),
        );
        let pattern = rule_props.get("EventPattern").expect("EventPattern");
        assert_eq!(pattern.get("source"), Some(&yaml("[lambda]")), "{rule}");
        assert_eq!(
            pattern.get("detail-type"),
            Some(&yaml("[Lambda Function Invocation Result - Failure]")),
            "{rule}"
        );
        let targets = rule_props
            .get("Targets")
            .and_then(Value::as_sequence)
            .expect("Targets");
        assert_eq!(targets.len(), 1, "{rule}: targets");
        let target = &targets[0];
        // …adds the stage…
        let transformer = target
            .get("InputTransformer")
            .unwrap_or_else(|| panic!("{rule}: no InputTransformer"));
        assert_eq!(
            transformer.get("InputPathsMap"),
            Some(&yaml("{record: $.detail}")),
            "{rule}: InputPathsMap"
        );
        let input = transformer
            .get("InputTemplate")
            .and_then(Value::as_str)
            .expect("InputTemplate")
            .replace("<record>", "null");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&input).expect("InputTemplate is JSON"),
            serde_json::json!({"stage": stage, "record": null}),
            "{rule}: the input it gives the state machine"
        );
        // …and starts a state machine…
        let machine_name = ref_to(target.get("Arn"))
            .unwrap_or_else(|| panic!("{rule}: the target is not a Ref to a resource"));
        assert_eq!(
            t.resource_type(machine_name),
            Some("AWS::Serverless::StateMachine"),
            "{rule}: target {machine_name}"
        );
        assert!(
            grants(
                &statements_of_role(&t, target.get("RoleArn")),
                "states:StartExecution",
                &format!("${{{machine_name}}}")
            ),
            "{rule}: its role may not start {machine_name}"
        );
        // …that publishes the record on the error topic with the attribute `stage`.
        let machine = t.resource(machine_name).expect("the machine");
        let props = machine.get("Properties").expect("Properties");
        let definition = props.get("Definition").expect("Definition");
        let start = definition
            .get("StartAt")
            .and_then(Value::as_str)
            .expect("StartAt");
        let publish = definition
            .get("States")
            .and_then(|s| s.get(start))
            .expect("the first state");
        assert_eq!(
            publish.get("Resource").and_then(Value::as_str),
            Some("arn:${Partition}:states:::sns:publish"),
            "{machine_name}: {start}"
        );
        assert_eq!(
            publish.get("Parameters"),
            Some(&yaml(
                r#"{TopicArn: "${ErrorTopicArn}", "Message.$": "$.record", MessageAttributes: {stage: {DataType: String, "StringValue.$": "$.stage"}}}"#
            )),
            "{machine_name}: {start} parameters"
        );
        assert_eq!(
            publish.get("End"),
            Some(&Value::Bool(true)),
            "{machine_name}"
        );
        let substitutions = props.get("DefinitionSubstitutions");
        assert_eq!(
            ref_to(substitutions.and_then(|s| s.get("ErrorTopicArn"))),
            Some(error_topic),
            "{machine_name}: ErrorTopicArn"
        );
        assert_eq!(
            ref_to(substitutions.and_then(|s| s.get("Partition"))),
            Some("AWS::Partition"),
            "{machine_name}: Partition"
        );
        assert!(
            grants(
                &t.role_statements(machine, machine_name),
                "sns:Publish",
                &format!("${{{error_topic}}}")
            ),
            "{machine_name}: its role may not publish to {error_topic}"
        );
    }
}

#[test]
fn functions_run_on_provided_al2023_with_rust_cargolambda_and_the_architecture_parameter() {
    let t = Template::load();
    let arch = t
        .parameter("Architecture")
        .expect("an Architecture parameter");
    assert_eq!(arch.get("Default").and_then(Value::as_str), Some("x86_64"));
    let allowed = strings(arch.get("AllowedValues"));
    assert_eq!(allowed, ["x86_64", "arm64"], "Architecture AllowedValues");
    let inspector_timeout_max = t
        .parameter("InspectorTimeout")
        .and_then(|p| p.get("MaxValue"))
        .and_then(Value::as_u64)
        .expect("InspectorTimeout has a MaxValue");
    let mut problems = Vec::new();
    for f in t.functions() {
        let p = &f.properties;
        let binary = f.binary.unwrap_or("?");
        let mut want = |what: &str, got: Option<Value>, expected: &str| {
            let expected: Value = serde_yaml::from_str(expected).expect("test YAML");
            if got.as_ref() != Some(&expected) {
                problems.push(format!(
                    "{} ({binary}): {what} is {got:?}, expected {expected:?}",
                    f.name
                ));
            }
        };
        want("Runtime", p.get("Runtime").cloned(), "provided.al2023");
        want("Handler", p.get("Handler").cloned(), "bootstrap");
        want(
            "Architectures",
            p.get("Architectures").cloned(),
            "[{Ref: Architecture}]",
        );
        want("CodeUri", p.get("CodeUri").cloned(), "'.'");
        want(
            "Metadata.BuildMethod",
            f.resource
                .get("Metadata")
                .and_then(|m| m.get("BuildMethod"))
                .cloned(),
            "rust-cargolambda",
        );
        // CloudFormation names the function (`<stack>-<logical ID>-<suffix>`, cut to
        // fit 64 characters): any stack name deploys.
        want(
            "FunctionName (none: CloudFormation's)",
            Some(p.get("FunctionName").cloned().unwrap_or(Value::Null)),
            "null",
        );
        // Logs go to a group of the template, with retention, that the role can write.
        let group = ref_to(p.get("LoggingConfig").and_then(|l| l.get("LogGroup")));
        match group.and_then(|g| t.resource(g)) {
            Some(g) => {
                want(
                    "log group name",
                    g.get("Properties")
                        .and_then(|p| p.get("LogGroupName"))
                        .and_then(flatten)
                        .map(Value::String),
                    &format!("'/aws/lambda/${{AWS::StackName}}-{binary}'"),
                );
                if g.get("Properties")
                    .and_then(|p| p.get("RetentionInDays"))
                    .is_none()
                {
                    problems.push(format!("{}: log group has no RetentionInDays", f.name));
                }
            }
            None => problems.push(format!(
                "{} ({binary}): no LoggingConfig.LogGroup of the template",
                f.name
            )),
        }
        let timeout = p.get("Timeout").and_then(Value::as_u64).unwrap_or(3);
        if !(1..=900).contains(&timeout) {
            problems.push(format!("{}: Timeout {timeout} outside 1..=900", f.name));
        }
        if binary == "inspector-harness" && timeout < inspector_timeout_max + 30 {
            problems.push(format!(
                "{}: Timeout {timeout} leaves no margin over InspectorTimeout's maximum {inspector_timeout_max}",
                f.name
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The retry budget of a Step Functions retrier: the sum of its waits, each
/// `IntervalSeconds * BackoffRate^i` capped at `MaxDelaySeconds`, with the
/// language's defaults (1 s, 3 attempts, rate 2.0).
fn retry_budget_seconds(retrier: &Value) -> f64 {
    let attempts = retrier
        .get("MaxAttempts")
        .and_then(Value::as_u64)
        .unwrap_or(3);
    // The walker computes each wait as Step Functions does: one formula for both.
    let retrier = serde_json::to_value(retrier).unwrap();
    (1..=attempts)
        .map(|a| alertresponder_aws_testkit::walker::retry_delay(&retrier, a).as_secs_f64())
        .sum()
}

#[test]
fn every_lambda_step_retries_timeouts_and_throttling_for_minutes_with_a_capped_delay() {
    let t = Template::load();
    let functions: BTreeSet<&str> = t
        .of_type("AWS::Serverless::Function")
        .chain(t.of_type("AWS::Lambda::Function"))
        .map(|(n, _)| n)
        .collect();
    let mut lambda_steps = 0;
    let mut problems = Vec::new();
    for (name, machine) in t.of_type("AWS::Serverless::StateMachine") {
        let props = machine.get("Properties").expect("state machine Properties");
        let substitutions = props
            .get("DefinitionSubstitutions")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        // A Task invokes Lambda through the service integration (any partition) or
        // by a function's ARN.
        let invokes_lambda = |resource: &str| -> bool {
            if resource.contains(":states:::lambda:invoke") {
                return true;
            }
            let Some(var) = resource
                .strip_prefix("${")
                .and_then(|r| r.strip_suffix('}'))
            else {
                return resource.contains(":lambda:") && resource.contains(":function:");
            };
            substitutions
                .get(var)
                .and_then(|v| v.get("Fn::GetAtt"))
                .and_then(|g| g.get(0))
                .and_then(Value::as_str)
                .is_some_and(|r| functions.contains(r))
        };
        // Every state, nested ones (Parallel branches, Map processors) included.
        let mut pending: Vec<Value> = props.get("Definition").cloned().into_iter().collect();
        while let Some(definition) = pending.pop() {
            let Some(states) = definition.get("States").and_then(Value::as_mapping) else {
                continue;
            };
            for (state_name, state) in states {
                let step = state_name.as_str().unwrap_or("?");
                for nested in ["Iterator", "ItemProcessor"] {
                    if let Some(d) = state.get(nested) {
                        pending.push(d.clone());
                    }
                }
                if let Some(branches) = state.get("Branches").and_then(Value::as_sequence) {
                    pending.extend(branches.iter().cloned());
                }
                let is_lambda_task = state.get("Type").and_then(Value::as_str) == Some("Task")
                    && state
                        .get("Resource")
                        .and_then(Value::as_str)
                        .is_some_and(invokes_lambda);
                if !is_lambda_task {
                    continue;
                }
                lambda_steps += 1;
                let retriers = state
                    .get("Retry")
                    .and_then(Value::as_sequence)
                    .cloned()
                    .unwrap_or_default();
                for error in TRANSIENT_ERRORS {
                    // The first retrier that names the error (or States.ALL) is the
                    // one Step Functions applies.
                    let Some(retrier) = retriers.iter().find(|r| {
                        strings(r.get("ErrorEquals"))
                            .iter()
                            .any(|e| e == error || e == "States.ALL")
                    }) else {
                        problems.push(format!("{name}: {step} does not retry {error}"));
                        continue;
                    };
                    if retrier.get("MaxDelaySeconds").is_none() {
                        problems.push(format!(
                            "{name}: {step} retries {error} with no MaxDelaySeconds: its backoff is uncapped"
                        ));
                    }
                    let budget = retry_budget_seconds(retrier);
                    if budget < 180.0 {
                        problems.push(format!(
                            "{name}: {step} retries {error} for {budget} s in all, under the 3 \
                             minutes a throttling storm can last"
                        ));
                    }
                }
            }
        }
    }
    assert!(
        lambda_steps > 0,
        "no state machine has a Task state that invokes Lambda"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ------------------------------------------------------------------ names, partition, grants

/// What CloudFormation makes of a string for a deployment: pseudo parameters from
/// `pseudo`, `Fn::Sub`, `Fn::Join`, `Fn::Select`, `Fn::Split`. `None` for what is
/// known only once deployed (a parameter, a resource's name or attribute).
fn evaluate(v: &Value, pseudo: &BTreeMap<&str, String>) -> Option<Value> {
    let text = |v: &Value| evaluate(v, pseudo).and_then(|e| e.as_str().map(str::to_string));
    let list = |v: &Value| match evaluate(v, pseudo)? {
        Value::Sequence(items) => Some(items),
        _ => None,
    };
    match v {
        Value::String(_) | Value::Number(_) => Some(v.clone()),
        Value::Sequence(items) => items
            .iter()
            .map(|i| evaluate(i, pseudo))
            .collect::<Option<Vec<_>>>()
            .map(Value::Sequence),
        Value::Mapping(m) => {
            if let Some(name) = m.get("Ref").and_then(Value::as_str) {
                return pseudo.get(name).map(|s| Value::String(s.clone()));
            }
            if let Some(args) = m.get("Fn::Select").and_then(Value::as_sequence) {
                let index = args.first()?.as_u64()? as usize;
                return list(args.get(1)?)?.get(index).cloned();
            }
            if let Some(args) = m.get("Fn::Split").and_then(Value::as_sequence) {
                let on = args.first()?.as_str()?;
                return Some(Value::Sequence(
                    text(args.get(1)?)?
                        .split(on)
                        .map(|s| Value::String(s.into()))
                        .collect(),
                ));
            }
            if let Some(args) = m.get("Fn::Join").and_then(Value::as_sequence) {
                let with = args.first()?.as_str()?;
                let parts: Option<Vec<String>> = list(args.get(1)?)?
                    .iter()
                    .map(|p| p.as_str().map(str::to_string))
                    .collect();
                return Some(Value::String(parts?.join(with)));
            }
            let (template, locals) = match m.get("Fn::Sub")? {
                Value::String(s) => (s.clone(), Mapping::new()),
                Value::Sequence(args) => (
                    args.first()?.as_str()?.to_string(),
                    args.get(1)
                        .and_then(Value::as_mapping)
                        .cloned()
                        .unwrap_or_default(),
                ),
                _ => return None,
            };
            let mut out = template.clone();
            for name in sub_variables(&template) {
                let value = match locals.get(name.as_str()) {
                    Some(local) => text(local)?,
                    None => pseudo.get(name.as_str())?.clone(),
                };
                out = out.replace(&format!("${{{name}}}"), &value);
            }
            Some(Value::String(out))
        }
        _ => None,
    }
}

#[test]
fn a_stack_name_of_128_characters_gives_names_within_every_limit() {
    // CloudFormation allows stack names of 128 characters; each name a resource
    // is given explicitly must fit its service's limit for the longest one. A
    // name left out is generated by CloudFormation, which makes it fit.
    let stack = format!("alertresponder-{}", "x".repeat(128 - 15));
    assert_eq!(stack.len(), 128);
    let pseudo: BTreeMap<&str, String> = [
        ("AWS::StackName", stack.clone()),
        (
            "AWS::StackId",
            format!(
                "arn:aws-us-gov:cloudformation:us-gov-west-1:123456789012:stack/{stack}/\
                 0123abcd-4567-89ef-0123-456789abcdef"
            ),
        ),
        ("AWS::Region", "us-gov-west-1".into()),
        ("AWS::Partition", "aws-us-gov".into()),
        ("AWS::AccountId", "123456789012".into()),
        ("AWS::URLSuffix", "amazonaws.com".into()),
    ]
    .into_iter()
    .collect();
    // (resource type, name property, longest name the service takes)
    let limits = [
        ("AWS::Serverless::Function", "FunctionName", 64),
        ("AWS::Lambda::Function", "FunctionName", 64),
        ("AWS::Serverless::StateMachine", "Name", 80),
        ("AWS::StepFunctions::StateMachine", "StateMachineName", 80),
        ("AWS::IAM::Role", "RoleName", 64),
        ("AWS::Logs::LogGroup", "LogGroupName", 512),
        ("AWS::Events::EventBus", "Name", 256),
        ("AWS::Events::Rule", "Name", 64),
        ("AWS::SNS::Topic", "TopicName", 256),
        ("AWS::SQS::Queue", "QueueName", 80),
        ("AWS::DynamoDB::Table", "TableName", 255),
    ];
    let mut problems = Vec::new();
    let mut checked = 0;
    for (resource, r) in resources_with_globals().iter() {
        let ty = r.get("Type").and_then(Value::as_str).unwrap_or("");
        for (_, property, max) in limits.iter().filter(|(t, _, _)| *t == ty) {
            let Some(value) = r.get("Properties").and_then(|p| p.get(*property)) else {
                continue;
            };
            checked += 1;
            match evaluate(value, &pseudo).as_ref().and_then(Value::as_str) {
                Some(name) if name.len() <= *max => {}
                Some(name) => problems.push(format!(
                    "{resource}: {property} is {} characters for a stack name of 128 \
                     (at most {max}): {name}",
                    name.len()
                )),
                None => problems.push(format!(
                    "{resource}: {property} {value:?} cannot be bounded before deployment"
                )),
            }
        }
    }
    assert!(
        checked > 0,
        "no explicit name checked: is the table of limits stale?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The resources, each function with the Globals merged in (a FunctionName could
/// come from there).
fn resources_with_globals() -> Vec<(String, Value)> {
    let t = Template::load();
    let functions: BTreeMap<String, Value> = t
        .functions()
        .into_iter()
        .map(|f| {
            let mut r = f.resource.clone();
            if let Some(m) = r.as_mapping_mut() {
                m.insert("Properties".into(), f.properties.clone());
            }
            (f.name.to_string(), r)
        })
        .collect();
    t.resources()
        .map(|(name, r)| {
            (
                name.to_string(),
                functions.get(name).cloned().unwrap_or_else(|| r.clone()),
            )
        })
        .collect()
}

#[test]
fn the_delay_state_machine_name_derives_from_the_stack_id_the_same_way_everywhere() {
    // The functions build its ARN from its Name (a Ref would be a cycle): each ARN
    // must evaluate to the name for the same stack, in any partition.
    let t = Template::load();
    let (name, machine) = state_machine(&t);
    let pseudo: BTreeMap<&str, String> = [
        ("AWS::StackName", "s".to_string()),
        (
            "AWS::StackId",
            "arn:aws-cn:cloudformation:cn-north-1:123456789012:stack/s/0123abcd-4567-89ef-0123-456789abcdef"
                .to_string(),
        ),
        ("AWS::Region", "cn-north-1".into()),
        ("AWS::Partition", "aws-cn".into()),
        ("AWS::AccountId", "123456789012".into()),
    ]
    .into_iter()
    .collect();
    let sm_name = evaluate(
        machine
            .get("Properties")
            .and_then(|p| p.get("Name"))
            .expect("Name"),
        &pseudo,
    )
    .and_then(|v| v.as_str().map(str::to_string))
    .expect("the Name evaluates");
    assert_eq!(
        sm_name, "alertresponder-delay-0123abcd-4567-89ef-0123-456789abcdef",
        "{name}: Name"
    );
    let arn = format!("arn:aws-cn:states:cn-north-1:123456789012:stateMachine:{sm_name}");
    let mut seen = 0;
    for f in t.functions() {
        if let Some(v) = f.variables().get(config::STATE_MACHINE_ARN) {
            seen += 1;
            assert_eq!(
                evaluate(v, &pseudo).as_ref().and_then(Value::as_str),
                Some(arn.as_str()),
                "{}: STATE_MACHINE_ARN",
                f.name
            );
        }
    }
    for (owner, s) in t.statements() {
        if strings(s.get("Action"))
            .iter()
            .any(|a| a == "states:StartExecution")
        {
            for element in elements(s.get("Resource")) {
                if references(&element).iter().all(|r| r.starts_with("AWS::")) {
                    seen += 1;
                    assert_eq!(
                        evaluate(&element, &pseudo).as_ref().and_then(Value::as_str),
                        Some(arn.as_str()),
                        "{owner}: states:StartExecution resource"
                    );
                }
            }
        }
    }
    assert!(
        seen >= 4,
        "expected the receptor's and the reviewer invoker's ARN and grants"
    );
}

#[test]
fn no_arn_in_the_template_names_the_aws_partition() {
    // GovCloud and China are partitions of their own: every ARN is built with
    // ${AWS::Partition} (in a state machine definition, its Partition substitution).
    let literal: Vec<(usize, &str)> = TEMPLATE
        .lines()
        .enumerate()
        .filter(|(_, line)| line.contains("arn:aws:"))
        .map(|(i, line)| (i + 1, line.trim()))
        .collect();
    assert!(
        literal.is_empty(),
        "template.yaml names the aws partition literally:\n{}",
        literal
            .iter()
            .map(|(n, l)| format!("line {n}: {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn eventbridge_rules_and_cloudwatch_alarms_of_the_account_may_publish_to_the_ingest_topic() {
    let t = Template::load();
    let yaml = |s: &str| -> Value { serde_yaml::from_str(s).expect("test YAML") };
    let ingest = ref_to(
        t.section("Outputs")
            .get("IngestTopicArn")
            .and_then(|o| o.get("Value")),
    )
    .expect("IngestTopicArn output is a Ref");
    let policies: Vec<(&str, &Value)> = t
        .of_type("AWS::SNS::TopicPolicy")
        .filter(|(_, p)| {
            elements(p.get("Properties").and_then(|p| p.get("Topics")))
                .iter()
                .any(|topic| ref_to(Some(topic)) == Some(ingest))
        })
        .collect();
    assert_eq!(policies.len(), 1, "topic policies of {ingest}");
    let (name, policy) = policies[0];
    let statements = policy
        .get("Properties")
        .and_then(|p| p.get("PolicyDocument"))
        .and_then(|d| d.get("Statement"))
        .and_then(Value::as_sequence)
        .unwrap_or_else(|| panic!("{name}: no statements"));
    for service in ["events.amazonaws.com", "cloudwatch.amazonaws.com"] {
        let allowed = statements.iter().any(|s| {
            s.get("Effect").and_then(Value::as_str) == Some("Allow")
                && strings(s.get("Principal").and_then(|p| p.get("Service")))
                    .iter()
                    .any(|p| p == service)
                && strings(s.get("Action")) == ["sns:Publish"]
                && elements(s.get("Resource"))
                    .iter()
                    .all(|r| ref_to(Some(r)) == Some(ingest))
                && s.get("Condition")
                    == Some(&yaml(
                        "{StringEquals: {aws:SourceAccount: {Ref: AWS::AccountId}}}",
                    ))
        });
        assert!(
            allowed,
            "{name}: {service} may not publish to {ingest}, scoped to this account"
        );
    }
    // Nothing else: no other principal, action or topic.
    for s in statements {
        let principal = s.get("Principal");
        assert!(
            principal.and_then(|p| p.get("AWS")).is_none() && principal != Some(&yaml("'*'")),
            "{name}: a statement for principals other than the two services: {s:?}"
        );
        assert_eq!(strings(s.get("Action")), ["sns:Publish"], "{name}: actions");
    }
}

/// The DynamoDB actions the code calls, by table: the whole of what the roles may
/// grant. A transaction needs no action of its own, only each item's.
const REPORT_TABLE_ACTIONS: &[&str] = &[
    // client.rs `get` (the meta item, an open report, a published version)
    "dynamodb:GetItem",
    // client.rs `batch_get` (admission, claims)
    "dynamodb:BatchGetItem",
    // client.rs `query_partition` (loading a report)
    "dynamodb:Query",
    // `Put` in transactions: client.rs `put_new`, admit.rs (the open report)
    "dynamodb:PutItem",
    // `Update` in transactions (admit, publish), claims.rs and findings.rs `update_item`
    "dynamodb:UpdateItem",
    // claims.rs: a claim that lost the attribute cap gives its item back
    "dynamodb:DeleteItem",
];
/// errors.rs `put_error`. (`get_error` reads it too, but only tests and operators call it.)
const ERROR_TABLE_ACTIONS: &[&str] = &["dynamodb:PutItem"];

/// The DynamoDB actions that the AWS adapters' code (crates/aws/src, tests left
/// out) calls: SDK operations, and the items of write transactions.
fn dynamodb_actions_in_code() -> BTreeSet<String> {
    // (what the code writes, the IAM action it needs)
    let calls = [
        (".get_item()", "GetItem"),
        (".batch_get_item()", "BatchGetItem"),
        (".transact_get_items()", "GetItem"),
        (".query()", "Query"),
        (".scan()", "Scan"),
        (".put_item()", "PutItem"),
        (".update_item()", "UpdateItem"),
        (".delete_item()", "DeleteItem"),
        (".batch_write_item()", "BatchWriteItem"),
        ("Put::builder()", "PutItem"),
        ("Update::builder()", "UpdateItem"),
        ("Delete::builder()", "DeleteItem"),
        ("ConditionCheck::builder()", "ConditionCheckItem"),
    ];
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir)
            .expect("read crates/aws/src")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                // A module's unit tests in a directory of their own are no code path.
                if path.file_name().is_some_and(|n| n != "tests") {
                    sources(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut found = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        // A file's unit tests come last, after `#[cfg(test)]`.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (call, action) in calls {
            if code.contains(call) {
                found.insert(format!("dynamodb:{action}"));
            }
        }
    }
    found
}

#[test]
fn the_dynamodb_actions_granted_are_exactly_those_the_code_calls() {
    let in_code = dynamodb_actions_in_code();
    let listed: BTreeSet<String> = REPORT_TABLE_ACTIONS
        .iter()
        .chain(ERROR_TABLE_ACTIONS)
        .map(|a| a.to_string())
        .collect();
    assert_eq!(
        in_code, listed,
        "the DynamoDB actions crates/aws/src calls differ from this test's lists: update them"
    );

    let t = Template::load();
    let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (owner, s) in t.statements() {
        let actions: Vec<String> = strings(s.get("Action"))
            .into_iter()
            .filter(|a| a.starts_with("dynamodb:"))
            .collect();
        if actions.is_empty() {
            continue;
        }
        for element in elements(s.get("Resource")) {
            let table = element
                .get("Fn::GetAtt")
                .and_then(|g| g.get(0))
                .and_then(Value::as_str)
                .filter(|table| t.resource_type(table) == Some("AWS::DynamoDB::Table"));
            let Some(table) = table else {
                problems.push(format!(
                    "{owner}: DynamoDB actions on {element:?}, not a table's Arn"
                ));
                continue;
            };
            let allowed = match table {
                "ReportTable" => REPORT_TABLE_ACTIONS,
                "ErrorTable" => ERROR_TABLE_ACTIONS,
                other => {
                    problems.push(format!("{owner}: a table this test does not know: {other}"));
                    continue;
                }
            };
            for action in &actions {
                if !allowed.contains(&action.as_str()) {
                    problems.push(format!(
                        "{owner}: grants {action} on {table}, which the code never calls on it"
                    ));
                }
                granted
                    .entry(table.to_string())
                    .or_default()
                    .insert(action.clone());
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for (table, wanted) in [
        ("ReportTable", REPORT_TABLE_ACTIONS),
        ("ErrorTable", ERROR_TABLE_ACTIONS),
    ] {
        let wanted: BTreeSet<String> = wanted.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            granted.get(table).cloned().unwrap_or_default(),
            wanted,
            "{table}: the actions some role is granted"
        );
    }
}

#[test]
fn the_readme_says_when_a_report_is_published_as_the_code_schedules_it() {
    // Dispatch runs InspectionDelay after the alert; version 1 is reviewed
    // ReviewDelay after the report's opening, or at dispatch if that is later
    // (core's dispatch: `(meta.created_at + review_delay).max(now)`). So the
    // first version comes max(InspectionDelay, ReviewDelay) after the opening
    // alert, not their sum.
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let t = Template::load();
    let default = |p: &str| {
        t.parameter(p)
            .and_then(|p| p.get("Default"))
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("parameter {p} has no numeric Default"))
    };
    let minutes = default("InspectionDelay").max(default("ReviewDelay")) / 60;
    let flat = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let claim = format!(
        "published `max(InspectionDelay, ReviewDelay)` seconds after the alert that opened it ({minutes} minutes by default"
    );
    assert!(
        flat.contains(&claim),
        "README.md (Send an alert) should say: {claim}"
    );
    assert!(
        !flat.contains("`InspectionDelay` + `ReviewDelay`"),
        "README.md adds the two delays: the review waits from the opening, not from the inspection"
    );
}

#[test]
fn delay_executions_that_end_without_success_reach_the_receptor() {
    use alertresponder_aws::execution_events::{CLOSED_WITHOUT_SUCCESS, DETAIL_TYPE, SOURCE};
    let t = Template::load();
    let yaml = |s: &str| -> Value { serde_yaml::from_str(s).expect("test YAML") };
    let (machine, _) = state_machine(&t);
    let receptor = t.function_of("receptor").name;
    let rules: Vec<(&str, &Value)> = t
        .of_type("AWS::Events::Rule")
        .filter(|(_, r)| {
            strings(
                r.get("Properties")
                    .and_then(|p| p.get("EventPattern"))
                    .and_then(|p| p.get("source")),
            ) == [SOURCE]
        })
        .collect();
    assert_eq!(rules.len(), 1, "rules on {SOURCE}: {rules:?}");
    let (rule, resource) = rules[0];
    assert!(
        resource.get("Condition").is_none(),
        "{rule}: always there, not behind a condition"
    );
    let properties = resource.get("Properties").expect("Properties");
    // Step Functions sends its events to the account's default bus.
    assert!(
        properties.get("EventBusName").is_none(),
        "{rule}: default bus"
    );
    assert_eq!(
        properties.get("State").and_then(Value::as_str),
        Some("ENABLED")
    );
    let pattern = properties.get("EventPattern").expect("EventPattern");
    assert_eq!(strings(pattern.get("detail-type")), [DETAIL_TYPE], "{rule}");
    let detail = pattern.get("detail").expect("detail");
    let statuses: BTreeSet<String> = strings(detail.get("status")).into_iter().collect();
    let expected: BTreeSet<String> = CLOSED_WITHOUT_SUCCESS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(statuses, expected, "{rule}: statuses");
    assert_eq!(
        elements(detail.get("stateMachineArn")),
        [yaml(&format!("{{Ref: {machine}}}"))],
        "{rule}: only the delay state machine's executions"
    );
    let targets = elements(properties.get("Targets"));
    assert_eq!(targets.len(), 1, "{rule}: targets");
    assert_eq!(
        targets[0].get("Arn"),
        Some(&yaml(&format!("{{Fn::GetAtt: [{receptor}, Arn]}}"))),
        "{rule}: the receptor, with the event as it is (no input transformer)"
    );
    assert!(targets[0].get("InputTransformer").is_none() && targets[0].get("Input").is_none());
    let permitted = t.of_type("AWS::Lambda::Permission").any(|(_, p)| {
        let p = p.get("Properties");
        let get = |k: &str| p.and_then(|p| p.get(k));
        get("Action").and_then(Value::as_str) == Some("lambda:InvokeFunction")
            && ref_to(get("FunctionName")) == Some(receptor)
            && get("Principal").and_then(Value::as_str) == Some("events.amazonaws.com")
            && get("SourceArn") == Some(&yaml(&format!("{{Fn::GetAtt: [{rule}, Arn]}}")))
    });
    assert!(
        permitted,
        "no lambda:InvokeFunction permission on {receptor} for events.amazonaws.com scoped to {rule}"
    );
}

#[test]
fn each_alert_source_rule_takes_what_core_maps_and_invokes_the_receptor_behind_its_parameter() {
    use alertresponder_core::sources::{guardduty, securityhub};
    let t = Template::load();
    let yaml = |s: &str| -> Value { serde_yaml::from_str(s).expect("test YAML") };
    let receptor = t.function_of("receptor").name;
    for (parameter, source, detail_type) in [
        (
            "GuardDutyFindings",
            guardduty::SOURCE,
            guardduty::DETAIL_TYPE,
        ),
        (
            "SecurityHubFindings",
            securityhub::SOURCE,
            securityhub::DETAIL_TYPE,
        ),
    ] {
        let p = t.parameter(parameter).expect(parameter);
        assert_eq!(p.get("Default").and_then(Value::as_str), Some("disabled"));
        let rules: Vec<(&str, &Value)> = t
            .of_type("AWS::Events::Rule")
            .filter(|(_, r)| {
                strings(
                    r.get("Properties")
                        .and_then(|p| p.get("EventPattern"))
                        .and_then(|p| p.get("source")),
                ) == [source]
            })
            .collect();
        assert_eq!(rules.len(), 1, "rules on {source}");
        let (rule, resource) = rules[0];
        let condition = resource
            .get("Condition")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{rule}: behind a condition"));
        assert_eq!(
            t.section("Conditions").get(condition),
            Some(&yaml(&format!(
                "{{Fn::Equals: [{{Ref: {parameter}}}, enabled]}}"
            ))),
            "{rule}: condition {condition} is {parameter} = enabled"
        );
        let properties = resource.get("Properties").expect("Properties");
        let pattern = properties.get("EventPattern").expect("EventPattern");
        assert_eq!(strings(pattern.get("detail-type")), [detail_type], "{rule}");
        let targets = elements(properties.get("Targets"));
        assert_eq!(targets.len(), 1, "{rule}: targets");
        assert_eq!(
            targets[0].get("Arn"),
            Some(&yaml(&format!("{{Fn::GetAtt: [{receptor}, Arn]}}"))),
            "{rule}: the receptor"
        );
        assert!(targets[0].get("InputTransformer").is_none() && targets[0].get("Input").is_none());
        let permitted = t.of_type("AWS::Lambda::Permission").any(|(_, p)| {
            let cond = p.get("Condition").and_then(Value::as_str);
            let p = p.get("Properties");
            let get = |k: &str| p.and_then(|p| p.get(k));
            cond == Some(condition)
                && get("Action").and_then(Value::as_str) == Some("lambda:InvokeFunction")
                && ref_to(get("FunctionName")) == Some(receptor)
                && get("Principal").and_then(Value::as_str) == Some("events.amazonaws.com")
                && get("SourceArn") == Some(&yaml(&format!("{{Fn::GetAtt: [{rule}, Arn]}}")))
        });
        assert!(permitted, "{rule}: no invoke permission scoped to it");
    }
    // Security Hub: only open findings cost an invocation.
    let (_, sh) = t
        .of_type("AWS::Events::Rule")
        .find(|(n, _)| *n == "SecurityHubFindingsRule")
        .expect("SecurityHubFindingsRule");
    let findings = sh["Properties"]["EventPattern"]["detail"]["findings"].clone();
    assert_eq!(strings(findings.get("RecordState")), ["ACTIVE"]);
    assert_eq!(strings(findings["Workflow"].get("Status")), ["NEW"]);
}

// ------------------------------------------------------------------ configuration file

/// The functions that build plugins from the configuration file.
const PLUGIN_BINARIES: &[&str] = &["inspector-harness", "reviewer-invoker", "emitter-fanout"];

/// The statements of `f`'s role in a deployment with parameters `given`.
fn deployed_statements(t: &Template, f: &Function<'_>, given: &[(&str, Value)]) -> Vec<Value> {
    let role = f
        .properties
        .get("Role")
        .and_then(|r| r.get("Fn::GetAtt"))
        .and_then(|g| g.get(0))
        .and_then(Value::as_str)
        .expect("Role: !GetAtt <role>.Arn");
    let policies = t
        .resource(role)
        .and_then(|r| r.get("Properties"))
        .and_then(|p| p.get("Policies"))
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    policies
        .iter()
        .filter_map(|p| p.get("PolicyDocument").and_then(|d| d.get("Statement")))
        .map(|s| resolve_conditions(t, s, given))
        .flat_map(|s| s.as_sequence().cloned().unwrap_or_default())
        .collect()
}

/// The statements of `statements` that grant an action of `service` (`s3:`).
fn of_service<'a>(statements: &'a [Value], service: &str) -> Vec<&'a Value> {
    statements
        .iter()
        .filter(|s| {
            strings(s.get("Action"))
                .iter()
                .any(|a| a.starts_with(service))
        })
        .collect()
}

fn bundle() -> Vec<(&'static str, Value)> {
    vec![
        ("ConfigBucket", Value::String("code-bucket".into())),
        (
            "ConfigPrefix",
            Value::String(format!("alertresponder/config/{}", "ab".repeat(32))),
        ),
    ]
}

#[test]
fn the_plugin_functions_read_exactly_the_configuration_bundle_and_only_when_there_is_one() {
    let t = Template::load();
    let given = bundle();
    for f in t.functions() {
        let Some(binary) = f.binary else { continue };
        let plugins = PLUGIN_BINARIES.contains(&binary);
        let uri = f.variables().get(config::CONFIG_S3_URI).cloned();
        assert_eq!(
            uri.is_some(),
            plugins,
            "{} ({binary}): CONFIG_S3_URI",
            f.name
        );
        // Without a bundle: no variable and no S3 grant.
        if let Some(uri) = &uri {
            assert!(
                is_no_value(&resolve_conditions(&t, uri, &[])),
                "{binary}: {uri:?}"
            );
            assert_eq!(
                flatten(&resolve_conditions(&t, uri, &given)).as_deref(),
                Some("s3://${ConfigBucket}/${ConfigPrefix}/alertresponder.toml"),
                "{binary}"
            );
        }
        assert!(
            of_service(&deployed_statements(&t, &f, &[]), "s3:").is_empty(),
            "{binary}: an S3 grant without a configuration bundle"
        );
        let statements = deployed_statements(&t, &f, &given);
        let s3 = of_service(&statements, "s3:");
        if !plugins {
            assert!(s3.is_empty(), "{binary} reads no configuration: {s3:?}");
            continue;
        }
        assert_eq!(s3.len(), 2, "{binary}: {s3:?}");
        for s in s3 {
            let actions = strings(s.get("Action"));
            let resources: Vec<String> = elements(s.get("Resource"))
                .iter()
                .filter_map(flatten)
                .collect();
            match actions.as_slice() {
                [a] if a == "s3:GetObject" => {
                    assert_eq!(resources, [CONFIG_OBJECTS], "{binary}");
                    assert!(s.get("Condition").is_none());
                }
                [a] if a == "s3:ListBucket" => {
                    assert_eq!(resources, ["arn:${AWS::Partition}:s3:::${ConfigBucket}"]);
                    let prefix = s
                        .get("Condition")
                        .and_then(|c| c.get("StringLike"))
                        .and_then(|c| c.get("s3:prefix"))
                        .and_then(flatten);
                    assert_eq!(
                        prefix.as_deref(),
                        Some("${ConfigPrefix}/*"),
                        "{binary}: ListBucket must be limited to the bundle's prefix"
                    );
                }
                other => panic!("{binary}: unexpected S3 grant {other:?}"),
            }
        }
    }
    // The prefix is content-addressed under `config/`: a parameter that names another
    // folder of the bucket (the code's, say) is refused by CloudFormation.
    let pattern = t
        .parameter("ConfigPrefix")
        .and_then(|p| p.get("AllowedPattern"));
    assert_eq!(
        pattern.and_then(Value::as_str),
        Some("^$|^([A-Za-z0-9!_.()-]+/)*config/[0-9a-f]{64}$")
    );
}

#[test]
fn secrets_are_granted_exactly_as_listed_to_the_plugin_functions_and_only_when_listed() {
    let t = Template::load();
    let given = [(
        "SecretArns",
        Value::String("arn:aws:secretsmanager:eu-west-1:123456789012:secret:vt-??????".into()),
    )];
    for f in t.functions() {
        let Some(binary) = f.binary else { continue };
        assert!(
            of_service(&deployed_statements(&t, &f, &[]), "secretsmanager:").is_empty(),
            "{binary}: a secret granted while none is listed"
        );
        let statements = deployed_statements(&t, &f, &given);
        let granted = of_service(&statements, "secretsmanager:");
        if !PLUGIN_BINARIES.contains(&binary) {
            assert!(granted.is_empty(), "{binary}: {granted:?}");
            continue;
        }
        assert_eq!(granted.len(), 1, "{binary}: {granted:?}");
        assert_eq!(
            strings(granted[0].get("Action")),
            ["secretsmanager:GetSecretValue"]
        );
        assert_eq!(
            ref_to(granted[0].get("Resource")),
            Some("SecretArns"),
            "{binary}: exactly the listed secrets"
        );
    }
    let pattern = t
        .parameter("SecretArns")
        .and_then(|p| p.get("AllowedPattern"))
        .and_then(Value::as_str)
        .expect("SecretArns has an AllowedPattern");
    // A name may hold `?` (the six characters Secrets Manager appends), never `*`.
    let name = pattern
        .split_once(":secret:")
        .map(|(_, name)| name)
        .unwrap_or_else(|| panic!("{pattern}"));
    assert!(
        pattern.contains(":secretsmanager:") && !name.contains('*'),
        "{pattern}"
    );
}

#[test]
fn the_aws_inspector_grants_read_only_calls_to_the_harness_only_when_enabled() {
    let t = Template::load();
    let enabled = [("AwsInspector", Value::String("enabled".into()))];
    let read_only = |a: &str| {
        let action = a.split(':').nth(1).unwrap_or("");
        ["Describe", "Get", "List", "Lookup"]
            .iter()
            .any(|p| action.starts_with(p))
    };
    for f in t.functions() {
        let Some(binary) = f.binary else { continue };
        for given in [&[][..], &enabled[..]] {
            let statements = deployed_statements(&t, &f, given);
            let aws: Vec<&Value> = statements.iter().filter(|s| is_aws_inspector(s)).collect();
            let expected = binary == "inspector-harness" && !given.is_empty();
            assert_eq!(aws.len(), usize::from(expected), "{binary} with {given:?}");
            for s in ["ec2:", "iam:", "cloudtrail:"] {
                for statement in of_service(&statements, s) {
                    for a in strings(statement.get("Action")) {
                        assert!(read_only(&a), "{binary}: {a} is not read-only");
                    }
                }
            }
        }
    }
}

#[test]
fn no_parameter_or_environment_variable_can_hold_a_secret() {
    let t = Template::load();
    let mut problems = Vec::new();
    for (name, spec) in t.section("Parameters") {
        let name = name.as_str().unwrap_or("?");
        let lower = name.to_ascii_lowercase();
        if spec.get("NoEcho").is_some() {
            problems.push(format!("{name}: NoEcho (a secret as a parameter)"));
        }
        for word in ["webhook", "url", "token", "password", "apikey", "policy"] {
            if lower.contains(word) {
                problems.push(format!("{name}: looks like it carries a {word}"));
            }
        }
        if lower.contains("secret") && name != "SecretArns" {
            problems.push(format!("{name}: a secret as a parameter"));
        }
        // Free text could carry anything: every String parameter is constrained.
        let ty = spec.get("Type").and_then(Value::as_str).unwrap_or("");
        if ty != "Number"
            && spec.get("AllowedPattern").is_none()
            && spec.get("AllowedValues").is_none()
        {
            problems.push(format!(
                "{name}: free text (no AllowedPattern or AllowedValues)"
            ));
        }
    }
    for spec in BINARIES {
        for variable in spec.required.iter().chain(spec.optional) {
            for word in [
                "WEBHOOK", "URL", "TOKEN", "PASSWORD", "SECRET", "KEY", "POLICY",
            ] {
                // CONFIG_S3_URI names where the file is, nothing it holds.
                if variable.contains(word) {
                    problems.push(format!("{}: reads {variable}", spec.binary));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_harness_timeout_is_the_one_its_rate_limit_wait_is_bounded_by() {
    let t = Template::load();
    let f = t.function_of("inspector-harness");
    assert_eq!(
        f.properties.get("Timeout").and_then(Value::as_u64),
        Some(config::HARNESS_TIMEOUT.as_secs())
    );
    let max = t
        .parameter("InspectorTimeout")
        .and_then(|p| p.get("MaxValue"))
        .and_then(Value::as_u64)
        .expect("InspectorTimeout MaxValue");
    assert!(
        max + config::HARNESS_MARGIN.as_secs() < config::HARNESS_TIMEOUT.as_secs(),
        "an inspector attempt and the margin must fit the harness's timeout"
    );
}

#[test]
fn the_quarantine_grants_the_fan_out_exactly_its_ec2_calls_and_only_when_on() {
    use alertresponder_aws::quarantine::ec2::{ISOLATE_ACTIONS, READ_ACTIONS, RELEASE_ACTIONS};
    use alertresponder_aws::quarantine::{Mode, QuarantineConfig};

    // The EC2 calls the code makes are the actions it declares (the fan-out's and the
    // release's): a new call is a new grant, decided here.
    let code = include_str!("../src/quarantine/ec2.rs");
    let code = code.split("#[cfg(test)]").next().unwrap_or("");
    let calls = [
        (".describe_instances()", "ec2:DescribeInstances"),
        (".describe_security_groups()", "ec2:DescribeSecurityGroups"),
        (".create_security_group()", "ec2:CreateSecurityGroup"),
        (
            ".revoke_security_group_ingress()",
            "ec2:RevokeSecurityGroupIngress",
        ),
        (
            ".revoke_security_group_egress()",
            "ec2:RevokeSecurityGroupEgress",
        ),
        (
            ".modify_network_interface_attribute()",
            "ec2:ModifyNetworkInterfaceAttribute",
        ),
        (".create_tags()", "ec2:CreateTags"),
        (".delete_tags()", "ec2:DeleteTags"),
    ];
    let called: BTreeSet<&str> = calls
        .iter()
        .filter(|(call, _)| code.contains(call))
        .map(|(_, action)| *action)
        .collect();
    let declared: BTreeSet<&str> = READ_ACTIONS
        .iter()
        .chain(ISOLATE_ACTIONS)
        .chain(RELEASE_ACTIONS)
        .copied()
        .collect();
    assert_eq!(
        called, declared,
        "quarantine/ec2.rs calls vs the actions it declares"
    );

    let t = Template::load();
    let f = t.function_of("emitter-fanout");
    let mode = |m: &str| vec![("Quarantine", Value::String(m.into()))];
    for (given, expected) in [
        ("Off", Vec::new()),
        ("DryRun", READ_ACTIONS.to_vec()),
        (
            "On",
            READ_ACTIONS
                .iter()
                .chain(ISOLATE_ACTIONS)
                .copied()
                .collect(),
        ),
    ] {
        let statements = deployed_statements(&t, &f, &mode(given));
        let ec2 = of_service(&statements, "ec2:");
        let granted: BTreeSet<String> = ec2.iter().flat_map(|s| strings(s.get("Action"))).collect();
        let expected: BTreeSet<String> = expected.iter().map(|a| a.to_string()).collect();
        assert_eq!(granted, expected, "Quarantine={given}");
        for s in &ec2 {
            assert!(is_quarantine(s), "Quarantine={given}: {s:?}");
            // Tags: only the group as it is created, and only our keys on instances.
            if strings(s.get("Action")) == ["ec2:CreateTags"] {
                let condition = s.get("Condition").expect("CreateTags has a condition");
                let create_action = condition
                    .get("StringEquals")
                    .and_then(|c| c.get("ec2:CreateAction"))
                    .and_then(Value::as_str);
                let keys = condition
                    .get("ForAllValues:StringLike")
                    .and_then(|c| c.get("aws:TagKeys"))
                    .and_then(Value::as_str);
                assert!(
                    create_action == Some("CreateSecurityGroup")
                        || keys == Some("alertresponder:quarantine*"),
                    "{s:?}"
                );
            }
            // Rules are revoked only from the group the fan-out created and tagged.
            if strings(s.get("Action"))
                .iter()
                .any(|a| a.starts_with("ec2:Revoke"))
            {
                let tag = s
                    .get("Condition")
                    .and_then(|c| c.get("StringEquals"))
                    .and_then(|c| c.get("aws:ResourceTag/alertresponder:quarantine-group"))
                    .and_then(Value::as_str);
                assert_eq!(tag, Some("true"), "{s:?}");
            }
        }
        // The section it records, and the re-review that shows it.
        let on = given != "Off";
        let flat: Vec<(Vec<String>, Vec<String>)> = statements
            .iter()
            .map(|s| {
                (
                    strings(s.get("Action")),
                    elements(s.get("Resource"))
                        .iter()
                        .filter_map(flatten)
                        .collect(),
                )
            })
            .collect();
        let grants = |action: &str, resource_end: &str| {
            flat.iter().any(|(a, r)| {
                a.iter().any(|x| x == action) && r.iter().any(|x| x.ends_with(resource_end))
            })
        };
        assert_eq!(
            grants("states:StartExecution", &state_machine_arn_suffix(&t)),
            on,
            "Quarantine={given}"
        );
        assert_eq!(
            grants(
                "states:DescribeExecution",
                &state_machine_executions_suffix(&t)
            ),
            on,
            "Quarantine={given}"
        );
        if on {
            assert!(
                grants("dynamodb:UpdateItem", "${ReportTable.Arn}"),
                "{given}"
            );
        }
        // Subscribed to the report topic even without a built-in emitter.
        for resource in ["EmitterFanoutSubscription", "EmitterFanoutPermission"] {
            assert_eq!(
                deployed(&t, resource, &mode(given)),
                on,
                "{resource} {given}"
            );
        }
    }

    // Every value the parameters allow is one the fan-out reads.
    let allowed = |name: &str| -> Vec<String> {
        strings(t.parameter(name).and_then(|p| p.get("AllowedValues")))
    };
    assert_eq!(allowed("Quarantine"), ["Off", "DryRun", "On"]);
    for (value, expected) in [
        ("Off", Mode::Off),
        ("DryRun", Mode::DryRun),
        ("On", Mode::On),
    ] {
        let c =
            QuarantineConfig::from_lookup(|n| (n == config::QUARANTINE).then(|| value.to_string()))
                .unwrap();
        assert_eq!(c.mode, expected);
    }
    for value in allowed("QuarantineSeverity") {
        QuarantineConfig::from_lookup(|n| {
            (n == config::QUARANTINE_MIN_SEVERITY).then(|| value.clone())
        })
        .unwrap_or_else(|e| panic!("QuarantineSeverity {value}: {e}"));
    }
    let vars = f.variables();
    assert_eq!(ref_to(vars.get(config::QUARANTINE)), Some("Quarantine"));
    assert_eq!(
        ref_to(vars.get(config::QUARANTINE_MIN_SEVERITY)),
        Some("QuarantineSeverity")
    );
}
