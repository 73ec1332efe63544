use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{ClusterResourceScope, Metadata, NamespaceResourceScope, Resource};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use super::Rule;
use crate::serde_util::nullable;

/// The `apiVersion` of both Cilium policy kinds.
pub const API_VERSION: &str = "cilium.io/v2";

/// Declares a Cilium policy resource: `metadata` plus `spec` and/or `specs`.
macro_rules! policy_resource {
    ($(#[$doc:meta])* $name:ident, $plural:literal, $scope:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        pub struct $name {
            #[serde(default)]
            pub metadata: ObjectMeta,
            /// One rule.
            #[serde(default)]
            pub spec: Option<Rule>,
            /// More rules (the DNS getting-started examples use this form).
            #[serde(default, deserialize_with = "nullable")]
            pub specs: Vec<Rule>,
        }

        impl $name {
            /// Every rule: `spec` first, then `specs`, as Cilium orders them.
            pub fn rules(&self) -> impl Iterator<Item = &Rule> {
                self.spec.iter().chain(&self.specs)
            }
        }

        impl Resource for $name {
            const API_VERSION: &'static str = API_VERSION;
            const GROUP: &'static str = "cilium.io";
            const KIND: &'static str = stringify!($name);
            const VERSION: &'static str = "v2";
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = $scope;
        }

        impl Metadata for $name {
            type Ty = ObjectMeta;

            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        /// Written with `apiVersion` and `kind`, like the k8s-openapi types.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut state = serializer.serialize_struct(stringify!($name), 5)?;
                state.serialize_field("apiVersion", API_VERSION)?;
                state.serialize_field("kind", stringify!($name))?;
                state.serialize_field("metadata", &self.metadata)?;
                match &self.spec {
                    Some(spec) => state.serialize_field("spec", spec)?,
                    None => state.skip_field("spec")?,
                }
                if self.specs.is_empty() {
                    state.skip_field("specs")?;
                } else {
                    state.serialize_field("specs", &self.specs)?;
                }
                state.end()
            }
        }
    };
}

policy_resource!(
    /// A namespaced Cilium policy: its rules select pods of its own namespace only.
    CiliumNetworkPolicy,
    "ciliumnetworkpolicies",
    NamespaceResourceScope
);

policy_resource!(
    /// A cluster-wide Cilium policy: its rules may select pods of every namespace, or nodes.
    CiliumClusterwideNetworkPolicy,
    "ciliumclusterwidenetworkpolicies",
    ClusterResourceScope
);
