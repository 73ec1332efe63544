use std::sync::Arc;

use schema::cilium::{
    CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy, EgressRule, IngressRule, Rule,
};
use schema::labels::Source;
use schema::object::Kind;
use schema::selector::LabelSelector;

use super::selector::{any_namespace, constrains_namespace, pin_namespace, sourced};
use super::{Origin, TranslatedRule};

/// A CiliumNetworkPolicy's rules: the subject and every endpoint peer are confined to the
/// policy's namespace unless a peer names its namespace itself.
pub fn network_policy(policy: &CiliumNetworkPolicy) -> Vec<TranslatedRule> {
    let origin = Arc::new(Origin::of(Kind::CiliumNetworkPolicy, &policy.metadata));
    let namespace = origin.namespace.clone().unwrap_or_default();
    let uid = policy.metadata.uid.as_deref();
    let scope = Scope::Namespace(&namespace);
    rules(&origin, uid, policy.spec.as_ref(), &policy.specs, scope)
}

/// A CiliumClusterwideNetworkPolicy's rules: the subject is taken as written; endpoint peers
/// without a namespace mean pods of every namespace (never world or host).
pub fn clusterwide_network_policy(policy: &CiliumClusterwideNetworkPolicy) -> Vec<TranslatedRule> {
    let origin = Arc::new(Origin::of(
        Kind::CiliumClusterwideNetworkPolicy,
        &policy.metadata,
    ));
    let uid = policy.metadata.uid.as_deref();
    rules(
        &origin,
        uid,
        policy.spec.as_ref(),
        &policy.specs,
        Scope::Cluster,
    )
}

#[derive(Clone, Copy)]
enum Scope<'a> {
    Namespace(&'a str),
    Cluster,
}

fn rules(
    origin: &Arc<Origin>,
    uid: Option<&str>,
    spec: Option<&Rule>,
    specs: &[Rule],
    scope: Scope<'_>,
) -> Vec<TranslatedRule> {
    let single = spec.map(|rule| (rule, "spec".to_owned()));
    let many = specs
        .iter()
        .enumerate()
        .map(|(i, rule)| (rule, format!("specs[{i}]")));
    single
        .into_iter()
        .chain(many)
        .map(|(rule, path)| {
            let rule = translate(origin, uid, rule, scope);
            TranslatedRule::new(Arc::clone(origin), rule, path)
        })
        .collect()
}

fn translate(origin: &Origin, uid: Option<&str>, rule: &Rule, scope: Scope<'_>) -> Rule {
    let mut out = rule.clone();
    out.endpoint_selector = rule.endpoint_selector.as_ref().map(|selector| {
        let mut selector = sourced(selector, Source::Any);
        if let Scope::Namespace(namespace) = scope {
            pin_namespace(&mut selector, namespace);
        }
        selector
    });
    out.node_selector = rule
        .node_selector
        .as_ref()
        .map(|selector| sourced(selector, Source::Any));
    out.ingress = rule.ingress.iter().map(|r| ingress(r, scope)).collect();
    out.ingress_deny = rule
        .ingress_deny
        .iter()
        .map(|r| ingress(r, scope))
        .collect();
    out.egress = rule.egress.iter().map(|r| egress(r, scope)).collect();
    out.egress_deny = rule.egress_deny.iter().map(|r| egress(r, scope)).collect();
    let mut labels = rule.labels.clone();
    labels.extend(origin.rule_labels(uid));
    out.labels = labels;
    out
}

fn ingress(rule: &IngressRule, scope: Scope<'_>) -> IngressRule {
    let mut out = rule.clone();
    out.from_endpoints = endpoints(&rule.from_endpoints, scope);
    out.from_requires = endpoints(&rule.from_requires, scope);
    out.from_nodes = nodes(&rule.from_nodes);
    out
}

fn egress(rule: &EgressRule, scope: Scope<'_>) -> EgressRule {
    let mut out = rule.clone();
    out.to_endpoints = endpoints(&rule.to_endpoints, scope);
    out.to_requires = endpoints(&rule.to_requires, scope);
    out.to_nodes = nodes(&rule.to_nodes);
    if let Scope::Namespace(namespace) = scope {
        for service in &mut out.to_services {
            if let Some(by_name) = &mut service.k8s_service
                && by_name.namespace.is_none()
            {
                by_name.namespace = Some(namespace.to_owned());
            }
            if let Some(by_labels) = &mut service.k8s_service_selector
                && by_labels.namespace.is_none()
            {
                by_labels.namespace = Some(namespace.to_owned());
            }
        }
    }
    out
}

fn endpoints(selectors: &[LabelSelector], scope: Scope<'_>) -> Vec<LabelSelector> {
    selectors
        .iter()
        .map(|selector| {
            let mut selector = sourced(selector, Source::Any);
            if !constrains_namespace(&selector) {
                match scope {
                    Scope::Namespace(namespace) => pin_namespace(&mut selector, namespace),
                    Scope::Cluster => any_namespace(&mut selector),
                }
            }
            selector
        })
        .collect()
}

fn nodes(selectors: &[LabelSelector]) -> Vec<LabelSelector> {
    selectors
        .iter()
        .map(|selector| sourced(selector, Source::Any))
        .collect()
}
