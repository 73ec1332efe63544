//! A prefix with carve-outs: CiliumNetworkPolicy `toCIDRSet`/`fromCIDRSet` entries and
//! NetworkPolicy `ipBlock`, which differ only in how an `except` must relate to its `cidr`.

use super::{Problem, Report};
use crate::cidr::Cidr;
use crate::path::FieldPath;

#[derive(Clone, Copy)]
pub(super) enum ExceptRule {
    /// Cilium: an `except` must lie inside the `cidr` (it may equal it).
    Inside,
    /// Kubernetes: an `except` must be a strict subset of the `cidr`.
    StrictSubset,
}

/// Checks `path.cidr` and every `path.except[i]`.
pub(super) fn cidr_with_except(
    report: &mut Report,
    path: &FieldPath,
    cidr: &str,
    except: &[String],
    rule: ExceptRule,
) {
    let outer = cidr.parse::<Cidr>().map_err(|reason| {
        let value = cidr.to_owned();
        report.error(&path.field("cidr"), Problem::Cidr { value, reason });
    });
    for (index, carve_out) in except.iter().enumerate() {
        let except_path = path.field("except").index(index);
        let inner = match carve_out.parse::<Cidr>() {
            Ok(inner) => inner,
            Err(reason) => {
                let value = carve_out.clone();
                report.error(&except_path, Problem::Cidr { value, reason });
                continue;
            }
        };
        let Ok(outer) = &outer else { continue };
        let (except, cidr) = (carve_out.clone(), cidr.to_owned());
        match rule {
            ExceptRule::Inside if !outer.contains(&inner) => {
                report.error(&except_path, Problem::ExceptOutsideCidr { except, cidr });
            }
            ExceptRule::StrictSubset
                if !(outer.contains(&inner) && inner.prefix_len() > outer.prefix_len()) =>
            {
                report.error(
                    &except_path,
                    Problem::ExceptNotStrictSubset { except, cidr },
                );
            }
            _ => {}
        }
    }
}
