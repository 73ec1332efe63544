use super::{Problem, Report};
use crate::cilium::IcmpRule;
use crate::path::FieldPath;

const MAX_FIELDS: usize = 40;

/// Checks an `icmps` list.
pub(super) fn rules(report: &mut Report, path: &FieldPath, rules: &[IcmpRule]) {
    for (index, rule) in rules.iter().enumerate() {
        let rule_path = path.index(index);
        if rule.fields.len() > MAX_FIELDS {
            let count = rule.fields.len();
            let problem = Problem::TooMany {
                count,
                max: MAX_FIELDS,
            };
            report.error(&rule_path.field("fields"), problem);
        }
        for (i, field) in rule.fields.iter().enumerate() {
            let field_path = rule_path.field("fields").index(i);
            let Some(family) = field.parsed_family() else {
                let value = field.family.clone().unwrap_or_default();
                let allowed = "IPv4, IPv6";
                report.error(
                    &field_path.field("family"),
                    Problem::NotOneOf { value, allowed },
                );
                continue;
            };
            if field.icmp_type.code(family).is_none() {
                let value = field.icmp_type.to_string();
                let family = family.as_str();
                report.error(
                    &field_path.field("type"),
                    Problem::IcmpType { value, family },
                );
            }
        }
    }
}
