//! An inspector Lambda written with the harness library, in a few lines: every
//! `ipaddr` gets a host section and one discovered `domain` (its reverse name, made
//! up here), which the harness feeds back as a new task. Name this function's ARN in
//! the stack's `InspectorFunctions` parameter. The stack-in-a-box test runs it.

use inspector_harness::{serve, Attribute, Inspection, SectionDraft, Task};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(|task: Task| async move {
        let mut found = Inspection::default();
        if task.attribute.attr_type == "ipaddr" {
            let ip = task.attribute.value.clone();
            let name = format!("host-{}.example.net", ip.replace(['.', ':'], "-"));
            found.sections.push(SectionDraft {
                section_type: "host".into(),
                content: serde_json::json!({ "ipaddr": [ip], "hostname": [name] }),
            });
            found.new_attributes.push(Attribute {
                attr_type: "domain".into(),
                key: "reverse name".into(),
                value: name,
                context: vec!["remote".into()],
                timestamp: None,
            });
        }
        Ok(found)
    })
    .await
}
