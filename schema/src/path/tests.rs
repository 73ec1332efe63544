use expect_test::expect;

use super::FieldPath;

#[test]
fn prints_like_yaml() {
    let spec = FieldPath::root().field("spec");
    let port = spec
        .field("ingress")
        .index(0)
        .field("toPorts")
        .index(1)
        .field("ports")
        .index(0)
        .field("port");
    let label = FieldPath::root()
        .field("metadata")
        .field("labels")
        .key("k8s:app");
    let rendered = [FieldPath::root(), spec, port, label]
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    expect![[r#"
        .
        spec
        spec.ingress[0].toPorts[1].ports[0].port
        metadata.labels[k8s:app]"#]]
    .assert_eq(&rendered);
}
