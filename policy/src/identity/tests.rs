use std::collections::BTreeMap;

use super::*;

#[test]
fn replicas_share_an_identity_and_labels_follow_cilium() {
    let ns_labels = BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), "prod".to_owned())]);
    let ctx = PodContext {
        namespace: "prod",
        namespace_labels: &ns_labels,
        service_account: "web",
        cluster: DEFAULT_CLUSTER,
    };
    let replica = |hash: &str| {
        let labels = BTreeMap::from([
            ("app".to_owned(), "web".to_owned()),
            ("pod-template-hash".to_owned(), hash.to_owned()),
            (
                "statefulset.kubernetes.io/pod-name".to_owned(),
                format!("web-{hash}"),
            ),
            ("app.kubernetes.io/name".to_owned(), "web".to_owned()),
        ]);
        pod_identity_labels(&labels, ctx)
    };
    let (one, two) = (replica("abc"), replica("def"));
    assert_eq!(one, two);
    expect_test::expect!["k8s:app=web,k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=prod,k8s:io.cilium.k8s.policy.cluster=default,k8s:io.cilium.k8s.policy.serviceaccount=web,k8s:io.kubernetes.pod.namespace=prod"]
        .assert_eq(&one.to_string());
    let mut alloc = Allocator::new();
    let first = alloc.allocate(&one).expect("space");
    let second = alloc.allocate(&two).expect("space");
    assert_eq!(first.identity, second.identity);
    assert_eq!(first.identity, Identity(256));
    assert!(first.is_new && !second.is_new);
    assert!(!alloc.release(first.identity));
    assert!(alloc.release(first.identity));
    assert_eq!(alloc.lookup(&one), None);
}

#[test]
fn reserved_and_cidr_label_sets_get_their_ranges() {
    let mut alloc = Allocator::new();
    let host = alloc.allocate(&reserved_labels("host")).expect("space");
    assert_eq!(host.identity, Identity::HOST);
    let cidr = alloc
        .allocate(&world_prefix_labels("10.0.0.0/8".parse().expect("cidr")))
        .expect("space");
    assert_eq!(cidr.identity, Identity(16_777_217));
    assert!(cidr.identity.is_local_scope());
}

#[test]
fn held_numbers_go_only_to_the_label_sets_that_prefer_them() {
    let labels = |app: &str| Labels::parse(&format!("k8s:app={app}")).expect("labels");
    let mut alloc = Allocator::new();
    alloc.hold(Identity(256));
    alloc.hold(Identity(300));
    alloc.hold(Identity::HOST);
    // A plain allocation skips both held numbers; a preferred one is taken once.
    let a = alloc.allocate(&labels("a")).expect("space").identity;
    let b = alloc
        .allocate_preferring(&labels("b"), Some(Identity(300)))
        .expect("space")
        .identity;
    let c = alloc
        .allocate_preferring(&labels("c"), Some(Identity(300)))
        .expect("space")
        .identity;
    assert_eq!((a, b, c), (Identity(257), Identity(300), Identity(258)));
    // Released held numbers come back lowest first, and the counter never hands out one in use.
    alloc.release_held();
    let next: Vec<u32> = ["d", "e"]
        .iter()
        .map(|app| alloc.allocate(&labels(app)).expect("space").identity.0)
        .collect();
    assert_eq!(next, [256, 259]);
    for app in 0..41 {
        let id = alloc.allocate(&labels(&format!("x{app}"))).expect("space");
        assert_ne!(id.identity, Identity(300), "300 is in use");
    }
}
