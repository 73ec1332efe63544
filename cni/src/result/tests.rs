use std::net::Ipv4Addr;

use expect_test::expect;
use serde_json::json;

use super::{AddResult, version_json};

fn result() -> AddResult {
    AddResult {
        host_ifname: "lxc3b9f0c2d1e4a".to_owned(),
        host_mac: "0a:58:0a:f4:00:01".to_owned(),
        ifname: "eth0".to_owned(),
        container_mac: "0a:58:0a:f4:00:02".to_owned(),
        sandbox: "/var/run/netns/cni-1234".to_owned(),
        ipv4: Ipv4Addr::new(10, 244, 0, 2),
        gateway: Ipv4Addr::new(169, 254, 1, 1),
    }
}

#[test]
fn add_result_has_the_spec_shape() {
    let json = serde_json::to_string_pretty(&result().to_json("1.0.0", None)).expect("json");
    expect![[r#"
        {
          "cniVersion": "1.0.0",
          "dns": {},
          "interfaces": [
            {
              "mac": "0a:58:0a:f4:00:01",
              "name": "lxc3b9f0c2d1e4a"
            },
            {
              "mac": "0a:58:0a:f4:00:02",
              "name": "eth0",
              "sandbox": "/var/run/netns/cni-1234"
            }
          ],
          "ips": [
            {
              "address": "10.244.0.2/32",
              "gateway": "169.254.1.1",
              "interface": 1
            }
          ],
          "routes": [
            {
              "dst": "0.0.0.0/0",
              "gw": "169.254.1.1"
            }
          ]
        }"#]]
    .assert_eq(&json);
}

#[test]
fn dns_from_the_configuration_is_passed_through() {
    let dns = json!({ "nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"] });
    let out = result().to_json("1.1.0", Some(&dns));
    assert_eq!(out["dns"], dns);
    assert_eq!(out["cniVersion"], "1.1.0");
}

#[test]
fn version_lists_what_is_supported() {
    expect![[r#"{"cniVersion":"1.0.0","supportedVersions":["1.0.0","1.1.0"]}"#]]
        .assert_eq(&version_json("1.0.0").to_string());
}
