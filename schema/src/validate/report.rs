use super::{Problem, ValidationError};
use crate::object::ObjectRef;
use crate::path::FieldPath;

/// Collects the errors of one object.
pub(super) struct Report {
    object: ObjectRef,
    errors: Vec<ValidationError>,
}

/// Where a rule sits, which changes what it may contain.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context {
    /// In `ingressDeny`/`egressDeny`.
    pub(super) deny: bool,
    /// In `ingress`/`ingressDeny`.
    pub(super) ingress: bool,
    /// The rule selects nodes (`nodeSelector`): a host policy.
    pub(super) host: bool,
}

impl Report {
    pub(super) fn new(object: ObjectRef) -> Self {
        Self {
            object,
            errors: Vec::new(),
        }
    }

    pub(super) fn error(&mut self, path: &FieldPath, problem: Problem) {
        self.errors.push(ValidationError {
            object: self.object.clone(),
            path: path.clone(),
            problem,
        });
    }

    pub(super) fn finish(self) -> Vec<ValidationError> {
        self.errors
    }
}
