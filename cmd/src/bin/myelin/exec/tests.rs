use std::path::Path;

use super::{Entry, entry};

#[test]
fn namespaces_ip_netns_manages_go_through_ip_netns_exec() {
    assert_eq!(
        entry(Path::new("/run/netns/myelin-default-web")),
        Entry::IpNetns("myelin-default-web".into())
    );
    assert_eq!(entry(Path::new("/proc/42/ns/net")), Entry::Setns);
    assert_eq!(entry(Path::new("/run/netns")), Entry::Setns);
    assert_eq!(entry(Path::new("/var/run/netns/x")), Entry::Setns);
}
