//! `tester/template.yaml` against the code that relies on it: the outputs and
//! parameters the tests read exist, its functions build the tester's binaries under
//! the names the main stack is given, and what it imports the main template exports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use alertresponder_tester::target::{
    FUNCTION_SUFFIXES, MAIN_OUTPUTS, MAIN_PARAMETERS, TESTER_OUTPUTS,
};
use serde_yaml::Value;

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keys(v: &Value, section: &str) -> Vec<String> {
    v[section]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_tester_template_has_what_the_tests_read_and_imports_what_the_main_stack_exports() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tester = load(&dir.join("template.yaml"));
    let main = load(&dir.join("../template.yaml"));

    let outputs = keys(&tester, "Outputs");
    for o in TESTER_OUTPUTS {
        assert!(
            outputs.contains(&o.to_string()),
            "tester/template.yaml has no output {o}"
        );
    }
    for o in MAIN_OUTPUTS {
        assert!(
            keys(&main, "Outputs").contains(&o.to_string()),
            "template.yaml has no output {o}"
        );
    }
    for p in MAIN_PARAMETERS {
        assert!(
            keys(&main, "Parameters").contains(&p.to_string()),
            "template.yaml has no parameter {p}"
        );
    }

    // Functions: `${AWS::StackName}-<suffix>`, building the binaries of tester/functions.
    let manifest = std::fs::read_to_string(dir.join("functions/Cargo.toml")).unwrap();
    let text = std::fs::read_to_string(dir.join("template.yaml")).unwrap();
    let mut names = Vec::new();
    for (_, r) in tester["Resources"].as_mapping().unwrap() {
        if r["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{binary} is not a binary of tester/functions"
        );
        names.push(format!("{:?}", r["Properties"]["FunctionName"]));
    }
    for s in FUNCTION_SUFFIXES {
        assert!(
            names
                .iter()
                .any(|n| n.contains(&format!("${{AWS::StackName}}-{s}"))),
            "no function named <stack>-{s}: {names:?}"
        );
    }

    // Every import is an export of the main template.
    let main_text = std::fs::read_to_string(dir.join("../template.yaml")).unwrap();
    let imports: Vec<&str> = text
        .match_indices("${MainStackName}-")
        .map(|(i, m)| {
            let rest = &text[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert!(imports.len() >= 2, "{imports:?}");
    for name in imports {
        assert!(
            main_text.contains(&format!("\"${{AWS::StackName}}-{name}\"")),
            "tester/template.yaml imports {name}, which template.yaml does not export"
        );
    }
}
