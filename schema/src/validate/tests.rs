use std::path::Path;

use expect_test::{Expect, expect};

use crate::manifest::{load_paths, parse_str};
use crate::object::Object;

/// Parses `yaml` (which must parse) and prints every validation error, one per line, with a
/// blank line between objects.
fn check(yaml: &str, expect: Expect) {
    let rendered = parse_str("test.yaml", yaml)
        .into_iter()
        .map(|result| {
            let object = result.unwrap_or_else(|err| panic!("does not parse: {err:?}"));
            let errors = super::object(&object);
            if errors.is_empty() {
                format!("{}: ok", object.object_ref())
            } else {
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    expect.assert_eq(&rendered);
}

/// A CiliumNetworkPolicy `default/rule1` whose spec is `spec` (indented by two spaces).
fn cnp(spec: &str) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: rule1\nspec:\n{spec}"
    )
}

#[test]
fn upstream_examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let objects: Vec<Object> = load_paths([dir]).into_iter().flatten().collect();
    assert_eq!(objects.len(), 16);
    for object in &objects {
        let errors = super::object(object);
        assert!(errors.is_empty(), "{}: {errors:#?}", object.object_ref());
    }
}

#[test]
fn port_that_is_neither_number_nor_name() {
    // "eighty" itself is a valid IANA service name, so it is a named port.
    check(
        &cnp(
            r#"  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports:
      - port: "80/TCP"
        protocol: TCP
      - port: "eighty"
        protocol: TCP
"#,
        ),
        expect![[
            r#"default/rule1: spec.ingress[0].toPorts[0].ports[0].port: "80/TCP" is neither a port number nor a port name"#
        ]],
    );
}

#[test]
fn resource_and_subject() {
    check(
        r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {namespace: prod}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: no-subject}
spec:
  ingress: [{}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: both}
specs:
- endpointSelector: {}
- endpointSelector: {}
  nodeSelector: {}
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: host-ok}
spec:
  nodeSelector: {matchLabels: {"node-role.kubernetes.io/control-plane": ""}}
"#,
        expect![[r#"
            prod/<unnamed>: metadata.name: is required
            prod/<unnamed>: spec: one of spec or specs is required

            default/no-subject: spec: one of endpointSelector or nodeSelector is required

            default/both: specs[1]: endpointSelector and nodeSelector cannot both be set
            default/both: specs[1].nodeSelector: is only allowed in CiliumClusterwideNetworkPolicy

            host-ok: ok"#]],
    );
}

#[test]
fn ports_and_protocols() {
    check(
        &cnp(r#"  endpointSelector: {}
  ingress:
  - toPorts:
    - ports:
      - {port: "80", endPort: 79}
      - {port: "http", endPort: 90}
      - {port: "1000", endPort: 70000}
      - {protocol: TCP}
      - {port: "70000"}
      - {port: "-http-"}
      - {port: "53", protocol: udp}
      - {port: "53", protocol: ICMP}
      - {port: "8080", endPort: 8090, protocol: SCTP}
      - {port: "0", protocol: ANY}
      - {port: "HTTP-Alt"}
"#),
        expect![[r#"
            default/rule1: spec.ingress[0].toPorts[0].ports[0].endPort: endPort 79 is less than port 80
            default/rule1: spec.ingress[0].toPorts[0].ports[1].endPort: endPort cannot be used with named port "http"
            default/rule1: spec.ingress[0].toPorts[0].ports[2].endPort: endPort 70000 is out of range 0-65535
            default/rule1: spec.ingress[0].toPorts[0].ports[3].port: is required
            default/rule1: spec.ingress[0].toPorts[0].ports[4].port: "70000" is neither a port number nor a port name
            default/rule1: spec.ingress[0].toPorts[0].ports[5].port: "-http-" is neither a port number nor a port name
            default/rule1: spec.ingress[0].toPorts[0].ports[6].protocol: "udp" is not one of TCP, UDP, SCTP, ANY
            default/rule1: spec.ingress[0].toPorts[0].ports[7].protocol: "ICMP" is not one of TCP, UDP, SCTP, ANY"#]],
    );
}

#[test]
fn too_many_ports_and_icmp_fields() {
    let ports = (1..=41)
        .map(|p| format!("      - port: \"{p}\"\n"))
        .collect::<String>();
    let fields = (0..41)
        .map(|t| format!("      - type: {t}\n"))
        .collect::<String>();
    check(
        &cnp(&format!(
            "  endpointSelector: {{}}\n  egress:\n  - toPorts:\n    - ports:\n{ports}  - icmps:\n    - fields:\n{fields}"
        )),
        expect![[r#"
            default/rule1: spec.egress[0].toPorts[0].ports: has 41 entries, at most 40 are allowed
            default/rule1: spec.egress[1].icmps[0].fields: has 41 entries, at most 40 are allowed"#]],
    );
}

#[test]
fn cidrs() {
    check(
        &cnp(r#"  endpointSelector: {}
  egress:
  - toCIDR: ["10.0.0.1", "10.0.0.0/33", "", "fd00::/8", "example.com"]
  - toCIDRSet:
    - cidr: 10.0.0.0/8
      except: [10.96.0.0/12, 11.0.0.0/16, "fd00::/64", 10.0.0.0/4, nope]
    - cidr: 192.168.0.1
    - except: [10.0.0.0/8]
    - cidr: 10.0.0.0/8
      cidrGroupRef: corp
    - cidrGroupSelector: {matchLabels: {env: prod}}
  ingress:
  - fromCIDR: [1.2.3.4/32]
    fromCIDRSet: [{cidr: "2001:db8::/32", except: ["2001:db8:1::/48"]}]
"#),
        expect![[r#"
            default/rule1: spec.egress[0].toCIDR[1]: "10.0.0.0/33" is not a valid CIDR: prefix length 33 is longer than 32
            default/rule1: spec.egress[0].toCIDR[2]: is required
            default/rule1: spec.egress[0].toCIDR[4]: "example.com" is not a valid CIDR: "example.com" is not an IP address
            default/rule1: spec.egress[1].toCIDRSet[0].except[1]: "11.0.0.0/16" is not inside "10.0.0.0/8"
            default/rule1: spec.egress[1].toCIDRSet[0].except[2]: "fd00::/64" is not inside "10.0.0.0/8"
            default/rule1: spec.egress[1].toCIDRSet[0].except[3]: "10.0.0.0/4" is not inside "10.0.0.0/8"
            default/rule1: spec.egress[1].toCIDRSet[0].except[4]: "nope" is not a valid CIDR: missing prefix length
            default/rule1: spec.egress[1].toCIDRSet[1].cidr: "192.168.0.1" is not a valid CIDR: missing prefix length
            default/rule1: spec.egress[1].toCIDRSet[2]: exactly one of cidr, cidrGroupRef and cidrGroupSelector is required
            default/rule1: spec.egress[1].toCIDRSet[3]: exactly one of cidr, cidrGroupRef and cidrGroupSelector is required
            default/rule1: spec.egress[1].toCIDRSet[3].cidrGroupRef: is not supported by myelin
            default/rule1: spec.egress[1].toCIDRSet[4].cidrGroupSelector: is not supported by myelin"#]],
    );
}

#[test]
fn entities_and_services() {
    check(
        &cnp(r#"  endpointSelector: {}
  ingress:
  - fromEntities: [world, remote-node, everything, World]
  egress:
  - toEntities: [kube-apiserver, cluster, all]
  - toServices:
    - k8sService: {serviceName: api, namespace: prod}
    - k8sService: {namespace: prod}
    - {}
    - k8sService: {serviceName: a}
      k8sServiceSelector: {selector: {}}
    - k8sServiceSelector: {selector: {matchLabels: {"bad key!": x}}}
"#),
        expect![[r#"
            default/rule1: spec.ingress[0].fromEntities[2]: "everything" is not a known entity
            default/rule1: spec.ingress[0].fromEntities[3]: "World" is not a known entity
            default/rule1: spec.egress[1].toServices[1].k8sService.serviceName: is required
            default/rule1: spec.egress[1].toServices[2]: exactly one of k8sService and k8sServiceSelector is required
            default/rule1: spec.egress[1].toServices[3]: exactly one of k8sService and k8sServiceSelector is required
            default/rule1: spec.egress[1].toServices[4].k8sServiceSelector.selector.matchLabels[bad key!]: "bad key!" is not a valid label key"#]],
    );
}

#[test]
fn fqdns() {
    check(
        &cnp(r#"  endpointSelector: {}
  egress:
  - toFQDNs:
    - matchName: "api.github.com"
    - matchPattern: "*.cilium.io"
    - matchPattern: "**.cilium.io"
    - matchName: "my_host.internal."
  - toFQDNs:
    - matchName: "api github.com"
    - matchPattern: "*.git?ub.com"
    - {}
    - {matchName: a.com, matchPattern: "*.a.com"}
  - toFQDNs: [{matchName: api.github.com}]
    toEndpoints: [{}]
    toCIDR: [10.0.0.0/8]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  egressDeny:
  - toFQDNs: [{matchName: evil.com}]
"#),
        expect![[r#"
            default/rule1: spec.egress[1].toFQDNs[0].matchName: "api github.com" may only contain letters, digits, '-', '_' and '.'
            default/rule1: spec.egress[1].toFQDNs[1].matchPattern: "*.git?ub.com" may only contain letters, digits, '-', '_', '.' and '*'
            default/rule1: spec.egress[1].toFQDNs[2]: exactly one of matchName and matchPattern is required
            default/rule1: spec.egress[1].toFQDNs[3]: exactly one of matchName and matchPattern is required
            default/rule1: spec.egress[2].toFQDNs: cannot be combined with toEndpoints in the same rule
            default/rule1: spec.egress[2].toFQDNs: cannot be combined with toCIDR in the same rule
            default/rule1: spec.egressDeny[0].toFQDNs: is not allowed in deny rules"#]],
    );
}

#[test]
fn deny_rules_take_no_l7_or_proxy_settings() {
    check(
        &cnp(r#"  endpointSelector: {}
  ingress:
  - fromEntities: [all]
  ingressDeny:
  - fromEntities: [world]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{method: GET}]
  - toPorts:
    - ports: [{port: "443", protocol: TCP}]
      serverNames: [example.com]
      terminatingTLS: {secret: {name: tls}}
    authentication: {mode: required}
  egressDeny:
  - toPorts:
    - ports: [{port: "53", protocol: UDP}]
      rules:
        dns: [{matchPattern: "*"}]
"#),
        expect![[r#"
            default/rule1: spec.ingressDeny[0].toPorts[0].rules: is not allowed in deny rules
            default/rule1: spec.ingressDeny[1].toPorts[0].terminatingTLS: is not allowed in deny rules
            default/rule1: spec.ingressDeny[1].toPorts[0].serverNames: is not allowed in deny rules
            default/rule1: spec.ingressDeny[1].authentication: is not allowed in deny rules
            default/rule1: spec.egressDeny[0].toPorts[0].rules: is not allowed in deny rules"#]],
    );
}

#[test]
fn l7_rules() {
    check(
        &cnp(r#"  endpointSelector: {}
  ingress:
  - toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - {method: "GET", path: "/v1/.*", host: "^api\\.example\\.com$"}
        - {path: "/v1/[a-z"}
        - {method: "(GET"}
        - headerMatches:
          - {name: X-Token, mismatch: LOG}
          - {name: "", mismatch: DROP}
          - {name: X-Secret, secret: {name: ""}}
    - ports: [{port: "80"}]
      rules:
        http: [{}]
    - ports: [{port: "0", protocol: TCP}]
      rules:
        http: [{}]
    - ports: [{port: "9092", protocol: TCP}]
      rules:
        kafka: [{topic: deathstar-plans}]
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{}]
        dns: [{matchPattern: "*"}]
    - ports: [{port: "80", protocol: TCP}]
      rules:
        l7: [{key: value}]
    - ports: [{port: "80", protocol: TCP}]
      rules:
        l7proto: cassandra
  egress:
  - toPorts:
    - ports: [{port: "53", protocol: ANY}, {port: "5353", endPort: 5354, protocol: UDP}]
      rules:
        dns: [{matchPattern: "*"}, {matchName: "bad name"}]
    - rules:
        dns: [{matchName: "example.com"}]
"#),
        expect![[r#"
            default/rule1: spec.ingress[0].toPorts[0].rules.http[1].path: "/v1/[a-z" is not a valid regular expression: unclosed character class
            default/rule1: spec.ingress[0].toPorts[0].rules.http[2].method: "(GET" is not a valid regular expression: unclosed group
            default/rule1: spec.ingress[0].toPorts[0].rules.http[3].headerMatches[1].name: is required
            default/rule1: spec.ingress[0].toPorts[0].rules.http[3].headerMatches[1].mismatch: "DROP" is not one of LOG, ADD, DELETE, REPLACE
            default/rule1: spec.ingress[0].toPorts[0].rules.http[3].headerMatches[2].secret.name: is required
            default/rule1: spec.ingress[0].toPorts[1].ports[0].protocol: L7 rules other than dns need protocol TCP, not ANY
            default/rule1: spec.ingress[0].toPorts[2].ports[0].port: port 0 (all ports) cannot carry L7 rules
            default/rule1: spec.ingress[0].toPorts[3].rules.kafka: is not supported by myelin
            default/rule1: spec.ingress[0].toPorts[4].rules: only one of http, kafka, dns and l7proto may be set, found http and dns
            default/rule1: spec.ingress[0].toPorts[4].rules.dns: dns rules are not allowed on ingress
            default/rule1: spec.ingress[0].toPorts[5].rules.l7: l7 requires l7proto
            default/rule1: spec.ingress[0].toPorts[6].rules.l7proto: is not supported by myelin
            default/rule1: spec.egress[0].toPorts[0].rules.dns[1].matchName: "bad name" may only contain letters, digits, '-', '_' and '.'
            default/rule1: spec.egress[0].toPorts[0].ports[1].endPort: dns rules do not support port ranges
            default/rule1: spec.egress[0].toPorts[1].rules.dns: dns rules need a port (53)"#]],
    );
}

#[test]
fn host_policies_take_no_l7() {
    check(
        r#"apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: host}
spec:
  nodeSelector: {}
  ingress:
  - toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http: [{}]
"#,
        expect![
            "host: spec.ingress[0].toPorts[0].rules: L7 rules are not supported in host policies (nodeSelector)"
        ],
    );
}

#[test]
fn icmps() {
    check(
        &cnp(r#"  endpointSelector: {}
  ingress:
  - icmps:
    - fields:
      - type: 8
      - {family: IPv6, type: EchoRequest}
      - {family: IPv4, type: "0"}
      - {family: IPv5, type: 8}
      - type: 300
      - type: EchoRequests
      - {family: IPv4, type: PacketTooBig}
  - icmps: [{fields: [{type: 8}]}]
    toPorts: [{ports: [{port: "80"}]}]
"#),
        expect![[r#"
            default/rule1: spec.ingress[0].icmps[0].fields[3].family: "IPv5" is not one of IPv4, IPv6
            default/rule1: spec.ingress[0].icmps[0].fields[4].type: "300" is not an ICMP type number (0-255) or IPv4 type name
            default/rule1: spec.ingress[0].icmps[0].fields[5].type: "EchoRequests" is not an ICMP type number (0-255) or IPv4 type name
            default/rule1: spec.ingress[0].icmps[0].fields[6].type: "PacketTooBig" is not an ICMP type number (0-255) or IPv4 type name
            default/rule1: spec.ingress[1].icmps: cannot be combined with toPorts in the same rule"#]],
    );
}

#[test]
fn selectors() {
    check(
        &cnp(r#"  endpointSelector:
    matchLabels:
      "k8s:io.kubernetes.pod.namespace": kube-system
      "reserved:host": ""
      "bogus:app": x
      "k8s:": x
      "bad key!": x
      app: "not a value"
    matchExpressions:
    - {key: tier, operator: In, values: [db, cache]}
    - {key: tier, operator: in, values: [db]}
    - {key: tier, operator: In}
    - {key: tier, operator: Exists, values: [db]}
    - {key: tier, operator: NotIn, values: ["-bad-"]}
    - {key: "k8s:tier", operator: DoesNotExist}
  ingress:
  - fromEndpoints:
    - {}
    - matchExpressions: [{key: env, operator: Equals, values: [prod]}]
  - fromNodes:
    - matchLabels: {"node:role": worker}
"#),
        expect![[r#"
            default/rule1: spec.endpointSelector.matchLabels[app]: "not a value" is not a valid label value
            default/rule1: spec.endpointSelector.matchLabels[bad key!]: "bad key!" is not a valid label key
            default/rule1: spec.endpointSelector.matchLabels[bogus:app]: unknown label source "bogus"
            default/rule1: spec.endpointSelector.matchLabels[k8s:]: "k8s:" has an empty key
            default/rule1: spec.endpointSelector.matchExpressions[1].operator: "in" is not one of In, NotIn, Exists, DoesNotExist
            default/rule1: spec.endpointSelector.matchExpressions[2].values: values must be non-empty for operator In
            default/rule1: spec.endpointSelector.matchExpressions[3].values: values must be empty for operator Exists
            default/rule1: spec.endpointSelector.matchExpressions[4].values[0]: "-bad-" is not a valid label value
            default/rule1: spec.ingress[0].fromEndpoints[1].matchExpressions[0].operator: "Equals" is not one of In, NotIn, Exists, DoesNotExist"#]],
    );
}

#[test]
fn authentication() {
    check(
        &cnp(r#"  endpointSelector: {}
  ingress:
  - fromEndpoints: [{}]
    authentication: {mode: disabled}
  - fromEndpoints: [{}]
    authentication: {mode: required}
  - fromEndpoints: [{}]
    authentication: {mode: mtls}
  egress:
  - toGroups: [{aws: {securityGroupsIds: [sg-1]}}]
"#),
        expect![[r#"
            default/rule1: spec.ingress[1].authentication.mode: "required" is not supported by myelin
            default/rule1: spec.ingress[2].authentication.mode: "mtls" is not one of disabled, required, test-always-fail
            default/rule1: spec.egress[0].toGroups: is not supported by myelin"#]],
    );
}

#[test]
fn specs_paths_and_all_errors_of_an_object() {
    check(
        r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: multi, namespace: prod}
specs:
- endpointSelector: {}
  egress: [{toEntities: [world]}]
- endpointSelector: {}
  egress: [{toEntities: [wrld]}]
- endpointSelector: {}
  egress:
  - toPorts: [{ports: [{port: "eighty!"}]}]
  - toCIDR: [300.0.0.0/8]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: fine, namespace: prod}
spec:
  endpointSelector: {}
  egress: [{toEntities: [world]}]
"#,
        expect![[r#"
            prod/multi: specs[1].egress[0].toEntities[0]: "wrld" is not a known entity
            prod/multi: specs[2].egress[0].toPorts[0].ports[0].port: "eighty!" is neither a port number nor a port name
            prod/multi: specs[2].egress[1].toCIDR[0]: "300.0.0.0/8" is not a valid CIDR: "300.0.0.0" is not an IP address

            prod/fine: ok"#]],
    );
}

#[test]
fn network_policies() {
    check(
        r#"apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad}
spec:
  podSelector:
    matchLabels: {"k8s:app": web}
    matchExpressions: [{key: tier, operator: in, values: [a]}]
  policyTypes: [Ingress, egress]
  ingress:
  - from:
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8, 11.0.0.0/16, 10.1.0.0/16]}
    - ipBlock: {cidr: 10.0.0.1}
    - ipBlock: {cidr: 10.0.0.0/8}
      podSelector: {}
    - {}
    ports:
    - {port: 0}
    - {port: HTTP}
    - {port: http, endPort: 90}
    - {endPort: 90}
    - {port: 100, endPort: 90}
    - {port: 100, endPort: 70000}
    - {protocol: ICMP}
    - {port: "80"}
  egress:
  - to:
    - namespaceSelector: {matchLabels: {"kubernetes.io/metadata.name": kube-system}}
      podSelector: {matchLabels: {k8s-app: kube-dns}}
    ports: [{port: 53, protocol: UDP}, {port: dns-tcp, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: empty}
"#,
        expect![[r#"
            default/bad: spec.podSelector.matchLabels[k8s:app]: "k8s:app" is not a valid label key
            default/bad: spec.podSelector.matchExpressions[0].operator: "in" is not one of In, NotIn, Exists, DoesNotExist
            default/bad: spec.policyTypes[1]: "egress" is not one of Ingress, Egress
            default/bad: spec.ingress[0].ports[0].port: port 0 is out of range 1-65535
            default/bad: spec.ingress[0].ports[1].port: "HTTP" is neither a port number nor a port name
            default/bad: spec.ingress[0].ports[2].endPort: endPort cannot be used with named port "http"
            default/bad: spec.ingress[0].ports[3].endPort: endPort requires a numeric port
            default/bad: spec.ingress[0].ports[4].endPort: endPort 90 is less than port 100
            default/bad: spec.ingress[0].ports[5].endPort: endPort 70000 is out of range 1-65535
            default/bad: spec.ingress[0].ports[6].protocol: "ICMP" is not one of TCP, UDP, SCTP
            default/bad: spec.ingress[0].ports[7].port: "80" is neither a port number nor a port name
            default/bad: spec.ingress[0].from[0].ipBlock.except[0]: "10.0.0.0/8" is not a strict subset of "10.0.0.0/8"
            default/bad: spec.ingress[0].from[0].ipBlock.except[1]: "11.0.0.0/16" is not a strict subset of "10.0.0.0/8"
            default/bad: spec.ingress[0].from[1].ipBlock.cidr: "10.0.0.1" is not a valid CIDR: missing prefix length
            default/bad: spec.ingress[0].from[2]: ipBlock cannot be combined with podSelector or namespaceSelector
            default/bad: spec.ingress[0].from[3]: must specify at least one of podSelector, namespaceSelector and ipBlock

            default/empty: spec: is required"#]],
    );
}

#[test]
fn unsupported_is_told_apart() {
    let yaml = cnp(
        "  endpointSelector: {}\n  egress:\n  - toGroups: [{aws: {region: eu}}]\n    toEntities: [wrld]\n",
    );
    let object = parse_str("test.yaml", &yaml).remove(0).unwrap();
    let errors = super::object(&object);
    let flags: Vec<_> = errors
        .iter()
        .map(|e| (e.to_string(), e.is_unsupported()))
        .collect();
    expect![[r#"
        [
            (
                "default/rule1: spec.egress[0].toEntities[0]: \"wrld\" is not a known entity",
                false,
            ),
            (
                "default/rule1: spec.egress[0].toGroups: is not supported by myelin",
                true,
            ),
        ]
    "#]]
    .assert_debug_eq(&flags);
}
