//! `alertresponder release-quarantine INSTANCE [--dry-run]` (feature `aws`): gives an
//! EC2 instance that the AWS runtime's automatic quarantine isolated its recorded
//! security groups back, then removes the quarantine's tags, and says what it did.
//!
//! The release is `alertresponder_aws::quarantine::ec2::release`, beside the code that
//! isolates and the tag encoding both share; this module only prints. AWS credentials
//! and region come from the environment (`AWS_PROFILE`, `AWS_REGION` …); the caller
//! needs `ec2:DescribeInstances`, `ec2:ModifyNetworkInterfaceAttribute` and
//! `ec2:DeleteTags`.

use std::process::ExitCode;

use alertresponder_aws::quarantine::ec2::{self, Release};
use alertresponder_core::render::sanitize;

/// Releases `instance` (or, with `dry_run`, prints what it would do) and prints it.
pub async fn release(instance: &str, dry_run: bool) -> anyhow::Result<ExitCode> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_ec2::Client::new(&sdk);
    let done = ec2::release(&client, instance, dry_run).await?;
    print!("{}", describe(&done));
    Ok(ExitCode::SUCCESS)
}

/// What a release did (or would do), for a person.
pub fn describe(r: &Release) -> String {
    let id = sanitize(&r.instance_id, 40);
    if !r.was_quarantined() {
        return format!("{id}: no quarantine tag of AlertResponder on it: nothing to do\n");
    }
    let (would, restore) = if r.dry_run {
        ("would ", "restore")
    } else {
        ("", "restored")
    };
    let mut out = match &r.report_id {
        Some(report) => format!("{id}: quarantined by report {}\n", sanitize(report, 80)),
        None => format!("{id}: quarantine begun but not finished (no marker tag)\n"),
    };
    for i in &r.restored {
        out.push_str(&format!(
            "  {}: {restore} groups {}\n",
            i.id,
            i.groups.join(" ")
        ));
    }
    for i in &r.unrecorded {
        out.push_str(&format!(
            "  {i}: no groups recorded for it: left as it is\n"
        ));
    }
    for i in &r.not_attached {
        out.push_str(&format!(
            "  {i}: recorded but no longer attached: {would}forget its record\n"
        ));
    }
    out.push_str(&format!(
        "  tags {}removed: {}\n",
        if r.dry_run { "to be " } else { "" },
        r.removed_tags
            .iter()
            .map(|k| sanitize(k, 128))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if r.dry_run {
        out.push_str("  (dry run: nothing changed)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use alertresponder_aws::quarantine::ec2::Interface;

    use super::*;

    #[test]
    fn a_release_says_which_groups_each_interface_gets_back_and_which_tags_go() {
        let r = Release {
            instance_id: "i-0123456789abcdef0".into(),
            report_id: Some("f1e2".into()),
            restored: vec![Interface {
                id: "eni-0123456789abcdef0".into(),
                groups: vec!["sg-11111111".into(), "sg-22222222".into()],
            }],
            not_attached: vec!["eni-99999999".into()],
            unrecorded: vec![],
            removed_tags: vec!["alertresponder:quarantine".into()],
            dry_run: true,
        };
        assert_eq!(
            describe(&r),
            "i-0123456789abcdef0: quarantined by report f1e2\n\
             \x20 eni-0123456789abcdef0: restore groups sg-11111111 sg-22222222\n\
             \x20 eni-99999999: recorded but no longer attached: would forget its record\n\
             \x20 tags to be removed: alertresponder:quarantine\n\
             \x20 (dry run: nothing changed)\n"
        );
        let none = Release {
            removed_tags: vec![],
            restored: vec![],
            not_attached: vec![],
            ..r
        };
        assert!(describe(&none).ends_with("nothing to do\n"));
    }
}
