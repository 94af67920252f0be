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

/// Errors a Lambda task retries: the Lambda service's transient ones and our
/// binaries' `Retryable` error type.
const TRANSIENT_ERRORS: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
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
                    args.first().and_then(Value::as_str).map(str::to_string)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn state_machine(t: &Template) -> (&str, &Value) {
    let machines: Vec<_> = t.of_type("AWS::Serverless::StateMachine").collect();
    assert_eq!(
        machines.len(),
        1,
        "expected exactly one AWS::Serverless::StateMachine, found {:?}",
        machines.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    machines[0]
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
                if !is_our_state_machine {
                    problems.push(format!(
                        "{owner} {sid}: resource {flat:?} names nothing of the template \
                         (a states ARN must end with {state_machine_suffix:?})"
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
            // `${Function.Arn}:*` (its versions) is the one wildcard allowed: it
            // follows a reference to a resource of the template.
            let body = match flat.strip_suffix(":*") {
                Some(body) if body.ends_with('}') => body,
                _ => flat.as_str(),
            };
            if body.contains('*') {
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
            let needs: &[&str] = match variable.as_str() {
                // Every function reads reports; errors are only written.
                config::REPORT_TABLE => &["dynamodb:GetItem"],
                config::ERROR_TABLE => &["dynamodb:PutItem"],
                config::TASK_TOPIC_ARN | config::REPORT_TOPIC_ARN | config::ERROR_TOPIC_ARN => {
                    &["sns:Publish"]
                }
                config::STATE_MACHINE_ARN => &["states:StartExecution"],
                config::INSPECTOR_FUNCTIONS | config::REVIEWER_FUNCTIONS => {
                    &["lambda:InvokeFunction"]
                }
                _ => &[],
            };
            if needs.is_empty() {
                continue;
            }
            // The IAM resource for a table is its ARN; for a function list, the parameter.
            let resource = match variable.as_str() {
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
                if !granted(action, &resource) {
                    problems.push(format!(
                        "{} ({binary}): told {variable} = {resource:?} but its role has no {action} on it",
                        f.name
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_state_machine_walks_wait_dispatch_choice_wait_compile_review_publish() {
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
    assert_eq!(
        flatten(props.get("Name").expect("state machine Name")).as_deref(),
        Some("${AWS::StackName}-delay"),
        "{name}: Name"
    );
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

    let mut listed: Vec<&str> = states.keys().filter_map(Value::as_str).collect();
    listed.sort_unstable();
    let mut wanted = vec![
        "WaitInspectionDelay",
        "Dispatch",
        "NeedsReview",
        "Done",
        "WaitReviewDelay",
        "Compile",
        "Review",
        "Publish",
        "PublishError",
        "Failed",
    ];
    wanted.sort_unstable();
    assert_eq!(listed, wanted, "{name}: the states");

    // The walk.
    expect("WaitInspectionDelay", "Type", "Wait");
    expect("WaitInspectionDelay", "TimestampPath", "$.dispatch_at");
    expect("WaitInspectionDelay", "Next", "Dispatch");
    expect("Dispatch", "Next", "NeedsReview");
    expect("NeedsReview", "Type", "Choice");
    expect("NeedsReview", "Default", "Done");
    let choices = state("NeedsReview")
        .get("Choices")
        .and_then(Value::as_sequence)
        .expect("NeedsReview has Choices");
    assert_eq!(choices.len(), 1, "{name}: NeedsReview has one choice");
    assert_eq!(
        choices[0],
        yaml("{Variable: $.dispatched.review, IsNull: false, Next: WaitReviewDelay}"),
        "{name}: NeedsReview goes on to WaitReviewDelay when the dispatcher asked for a review"
    );
    expect("Done", "Type", "Succeed");
    expect("WaitReviewDelay", "Type", "Wait");
    expect(
        "WaitReviewDelay",
        "TimestampPath",
        "$.dispatched.review.review_at",
    );
    expect("WaitReviewDelay", "Next", "Compile");
    expect("Compile", "Next", "Review");
    expect("Review", "Next", "Publish");
    expect("Publish", "End", "true");
    assert!(
        state("Publish").get("Next").is_none(),
        "{name}: Publish ends the walk"
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
        ("Dispatch", "DispatcherArn", "dispatcher", "$.dispatched"),
        ("Compile", "CompilerArn", "compiler", "$.compiled"),
        (
            "Review",
            "ReviewerInvokerArn",
            "reviewer-invoker",
            "$.result",
        ),
        (
            "Publish",
            "EmitterFanoutArn",
            "emitter-fanout",
            "$.published",
        ),
    ];
    for (step, substitution, _, result_path) in steps {
        expect(step, "Type", "Task");
        expect(step, "Resource", "arn:aws:states:::lambda:invoke");
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
            Some(6),
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
    assert_eq!(
        payload("Dispatch"),
        Value::String("$".into()),
        "Dispatch payload"
    );
    assert_eq!(
        payload("Compile"),
        Value::String("$.dispatched.review".into()),
        "Compile payload"
    );
    assert_eq!(
        payload("Review"),
        Value::String("$.compiled".into()),
        "Review payload"
    );
    assert_eq!(
        payload("Publish"),
        yaml(
            r#"{"compiled.$": "$.compiled", "result.$": "$.result", "publisher.$": "$$.Execution.Name"}"#
        ),
        "Publish payload"
    );
    let selector = |s: &str| state(s).get("ResultSelector").cloned();
    assert_eq!(
        selector("Dispatch"),
        Some(yaml(r#"{"review.$": "$.Payload.review"}"#))
    );
    assert_eq!(
        selector("Compile"),
        Some(yaml(
            r#"{"report_id.$": "$.Payload.report_id", "version.$": "$.Payload.version", "report.$": "$.Payload.report"}"#
        ))
    );
    assert_eq!(
        selector("Review"),
        Some(yaml(
            r#"{"severity.$": "$.Payload.severity", "reason.$": "$.Payload.reason"}"#
        ))
    );
    assert_eq!(
        selector("Publish"),
        Some(yaml(r#"{"published.$": "$.Payload.published"}"#))
    );

    // Failures: published by Step Functions itself, then the execution fails.
    expect("PublishError", "Type", "Task");
    expect("PublishError", "Resource", "arn:aws:states:::sns:publish");
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
            "CompilerArn",
            "DispatcherArn",
            "EmitterFanoutArn",
            "ErrorTopicArn",
            "ReviewerInvokerArn"
        ],
        "{name}: DefinitionSubstitutions"
    );

    // Its role: invoke exactly the four functions, publish to the error topic, nothing else.
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
        check("SSESpecification", "{SSEEnabled: true}");
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
    // What the outputs point at is wired: the receptor listens to the ingest
    // topic, the harness to the task topic.
    let ingest = ref_to(outputs.get("IngestTopicArn").and_then(|o| o.get("Value"))).unwrap_or("");
    let task = ref_to(outputs.get("TaskTopicArn").and_then(|o| o.get("Value"))).unwrap_or("");
    for (binary, topic) in [("receptor", ingest), ("inspector-harness", task)] {
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
fn asynchronously_invoked_functions_send_failed_events_to_the_error_topic() {
    let t = Template::load();
    let error_topic = ref_to(
        t.section("Outputs")
            .get("ErrorTopicArn")
            .and_then(|o| o.get("Value")),
    )
    .expect("ErrorTopicArn output is a Ref");
    for binary in ["receptor", "inspector-harness"] {
        let f = t.function_of(binary);
        let dlq = f.properties.get("DeadLetterQueue");
        let on_failure = f
            .properties
            .get("EventInvokeConfig")
            .and_then(|c| c.get("DestinationConfig"))
            .and_then(|d| d.get("OnFailure"));
        let target = dlq
            .and_then(|d| d.get("TargetArn"))
            .or_else(|| on_failure.and_then(|o| o.get("Destination")));
        assert_eq!(
            ref_to(target),
            Some(error_topic),
            "{} ({binary}) is invoked by SNS: it needs a DeadLetterQueue or an OnFailure destination on {error_topic}",
            f.name
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
        want(
            "FunctionName",
            p.get("FunctionName").and_then(flatten).map(Value::String),
            &format!("'${{AWS::StackName}}-{binary}'"),
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
