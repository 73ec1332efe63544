use expect_test::expect;

use super::{
    CiliumNetworkPolicy, Entity, IcmpFamily, IcmpType, L7Rules, PortProtocol, Protocol, Rule,
};
use crate::port::Port;

const L7_POLICY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      org: empire
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: 80
        protocol: TCP
      rules:
        http:
        - method: POST
          path: /v1/request-landing
          headers: ["X-Has-Force: true"]
  - icmps:
    - fields:
      - type: 8
      - family: IPv6
        type: EchoRequest
  egress: ~
  labels:
  - key: team
    value: empire
"#;

#[test]
fn reads_and_writes_a_policy() {
    let policy: CiliumNetworkPolicy = serde_norway::from_str(L7_POLICY).unwrap();
    let rule = policy.spec.as_ref().unwrap();
    assert!(rule.touches_ingress());
    assert!(!rule.touches_egress());
    let ports = &rule.ingress[0].to_ports[0].ports[0];
    assert_eq!(ports.port.as_deref(), Some("80"));
    assert_eq!(ports.parsed_port(), Some(Port::Number(80)));
    assert_eq!(ports.parsed_protocol(), Some(Protocol::Tcp));
    let icmp = &rule.ingress[1].icmps[0].fields;
    assert_eq!(icmp[0].icmp_type.code(IcmpFamily::V4), Some(8));
    assert_eq!(
        icmp[1].icmp_type.code(icmp[1].parsed_family().unwrap()),
        Some(128)
    );
    assert_eq!(policy.rules().count(), 1);

    expect![[r#"
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: rule1
          namespace: default
        spec:
          endpointSelector:
            matchLabels:
              org: empire
          ingress:
          - fromEndpoints:
            - matchLabels:
                org: empire
            toPorts:
            - ports:
              - port: '80'
                protocol: TCP
              rules:
                http:
                - method: POST
                  path: /v1/request-landing
                  headers:
                  - 'X-Has-Force: true'
          - icmps:
            - fields:
              - type: 8
              - family: IPv6
                type: EchoRequest
          labels:
          - key: team
            value: empire
            source: unspec
    "#]]
    .assert_eq(&serde_norway::to_string(&policy).unwrap());
}

#[test]
fn icmp_types_by_number_and_name() {
    let rendered = [
        (IcmpType::Number(0), IcmpFamily::V4),
        (IcmpType::Number(255), IcmpFamily::V6),
        (IcmpType::Number(256), IcmpFamily::V4),
        (IcmpType::Number(-1), IcmpFamily::V4),
        (IcmpType::Name("8".to_owned()), IcmpFamily::V4),
        (IcmpType::Name("EchoRequest".to_owned()), IcmpFamily::V4),
        (IcmpType::Name("EchoRequest".to_owned()), IcmpFamily::V6),
        (IcmpType::Name("PacketTooBig".to_owned()), IcmpFamily::V4),
        (IcmpType::Name("echorequest".to_owned()), IcmpFamily::V4),
    ]
    .iter()
    .map(|(ty, family)| format!("{ty} {} -> {:?}", family.as_str(), ty.code(*family)))
    .collect::<Vec<_>>()
    .join("\n");
    expect![[r#"
        0 IPv4 -> Some(0)
        255 IPv6 -> Some(255)
        256 IPv4 -> None
        -1 IPv4 -> None
        8 IPv4 -> Some(8)
        EchoRequest IPv4 -> Some(8)
        EchoRequest IPv6 -> Some(128)
        PacketTooBig IPv4 -> None
        echorequest IPv4 -> None"#]]
    .assert_eq(&rendered);
}

#[test]
fn entities_and_protocols_parse() {
    let names: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
    expect!["all cluster health host ingress init kube-apiserver none remote-node unmanaged world world-ipv4 world-ipv6"]
        .assert_eq(&names.join(" "));
    assert!(Entity::ALL.iter().all(|e| e.as_str().parse() == Ok(*e)));
    expect![[r#"UnknownEntity("everything")"#]].assert_eq(&format!(
        "{:?}",
        "everything".parse::<Entity>().unwrap_err()
    ));

    let protocols = [
        None,
        Some(""),
        Some("ANY"),
        Some("TCP"),
        Some("udp"),
        Some("ICMP"),
    ]
    .map(Protocol::parse);
    expect!["[Some(Any), Some(Any), Some(Any), Some(Tcp), None, None]"]
        .assert_eq(&format!("{protocols:?}"));
}

#[test]
fn present_l7_lists_count_even_when_empty() {
    let rules: L7Rules = serde_norway::from_str("http: []").unwrap();
    assert!(!rules.is_empty());
    let rules: L7Rules = serde_norway::from_str("{}").unwrap();
    assert!(rules.is_empty());
}

#[test]
fn null_lists_read_as_empty() {
    let rule: Rule =
        serde_norway::from_str("endpointSelector: {}\ningress:\negress: null").unwrap();
    assert!(rule.ingress.is_empty() && rule.egress.is_empty());
    assert_eq!(rule.endpoint_selector, Some(Default::default()));
    let port: PortProtocol = serde_norway::from_str("port: ~").unwrap();
    assert_eq!(port.port, None);
}
