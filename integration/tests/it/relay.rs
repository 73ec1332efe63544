//! `myelin-relay` over two real agents (two embedded Star Wars nodes): flows of both nodes merged
//! in time order with the number cut overall, the status summed, a follow stream through the
//! relay, and a node going away reported unavailable while the other still answers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use schema::flow::{FlowFilter, Verdict};
use schema::observer::GetFlowsRequest;
use schema::observer::get_flows_response::ResponseTypes;

use crate::cni::binary;
use crate::embedded::{Embedded, describe, examples};

/// The relay process; killed on drop.
struct RelayProcess {
    child: Child,
    socket: PathBuf,
}

impl RelayProcess {
    fn start(peers: &[&Embedded], socket: &Path) -> RelayProcess {
        let mut command = Command::new(binary("myelin-relay"));
        for peer in peers {
            command.arg("--peer").arg(format!(
                "unix://{}",
                peer.run_dir().join("hubble.sock").display()
            ));
        }
        let child = command
            .arg("--listen-address")
            .arg(format!("unix://{}", socket.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start myelin-relay");
        let relay = RelayProcess {
            child,
            socket: socket.to_owned(),
        };
        for _ in 0..100 {
            if socket.exists() {
                return relay;
            }
            crate::cni::pause();
        }
        panic!("myelin-relay did not listen on {}", socket.display());
    }

    fn server(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn xwing_is_dropped(node: &Embedded) {
    node.myelin_ok(&[
        "apply",
        "-f",
        &examples().join("starwars/policy").display().to_string(),
    ]);
    let out = node.myelin(&[
        "probe",
        "--from",
        "default/xwing",
        "--to",
        "default/deathstar-c74d84667-cx5kp",
        "--port",
        "80/TCP",
        "--timeout",
        "1s",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "denied",
        "{}",
        describe(&out)
    );
}

fn node_names(json_lines: &str) -> Vec<String> {
    json_lines
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            value["node_name"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[test]
fn the_relay_merges_two_agents() {
    let first = Embedded::up("starwars");
    let second = Embedded::up("starwars");
    xwing_is_dropped(&first);
    xwing_is_dropped(&second);
    let socket = std::env::temp_dir().join(format!("{}-relay.sock", first.name()));
    let relay = RelayProcess::start(&[&first, &second], &socket);
    let server = relay.server();

    let drops = first.myelin_ok(&[
        "observe",
        "--server",
        &server,
        "--from-pod",
        "default/xwing",
        "-t",
        "drop",
        "--all",
        "-o",
        "json",
    ]);
    let mut nodes = node_names(&drops);
    let times: Vec<String> = drops
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON");
            value["time"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "merged flows are in time order");
    nodes.dedup();
    let mut both: Vec<&str> = nodes.iter().map(String::as_str).collect();
    both.sort_unstable();
    both.dedup();
    let mut expected = vec![first.name(), second.name()];
    expected.sort_unstable();
    assert_eq!(both, expected, "drops from both nodes:\n{drops}");

    // `--last 1` is one flow overall, the newest: the second node's drop came last.
    let last = first.myelin_ok(&[
        "observe",
        "--server",
        &server,
        "--from-pod",
        "default/xwing",
        "-t",
        "drop",
        "--last",
        "1",
        "-o",
        "json",
    ]);
    assert_eq!(node_names(&last), [second.name()], "{last}");

    let status = first.myelin_ok(&["observe", "status", "--server", &server]);
    assert!(status.contains("Connected Nodes: 2/2"), "{status}");

    // Following through the relay: a new drop on the first node arrives.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let followed = runtime.block_on(async {
        let mut client = cmd_client(&server);
        let request = GetFlowsRequest {
            follow: true,
            number: 0,
            since: Some(now()),
            whitelist: vec![FlowFilter {
                source_pod: vec!["default/xwing".to_owned()],
                verdict: vec![Verdict::Dropped.into()],
                ..FlowFilter::default()
            }],
            ..GetFlowsRequest::default()
        };
        let mut stream = client
            .get_flows(request)
            .await
            .expect("GetFlows")
            .into_inner();
        let probe = tokio::task::spawn_blocking({
            let run_dir = first.run_dir().to_owned();
            move || {
                Command::new(binary("myelin"))
                    .args([
                        "probe",
                        "--from",
                        "default/xwing",
                        "--to",
                        "default/deathstar-c74d84667-cx5kp",
                        "--port",
                        "80/TCP",
                        "--timeout",
                        "1s",
                    ])
                    .env("MYELIN_RUN_DIR", run_dir)
                    .output()
                    .expect("probe")
            }
        });
        let next = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let response = stream.message().await.expect("healthy").expect("goes on");
                if let Some(ResponseTypes::Flow(_)) = response.response_types {
                    return response;
                }
            }
        })
        .await
        .expect("a followed drop through the relay within 15s");
        probe.await.expect("probe task");
        next
    });
    assert_eq!(followed.node_name, first.name());

    // The second node goes away: the relay still answers with the first and says so.
    drop(second);
    let status = first.myelin_ok(&["observe", "status", "--server", &server]);
    assert!(
        status.contains("Connected Nodes: 1/2") && status.contains("Unavailable Nodes:"),
        "{status}"
    );
    let drops = first.myelin_ok(&[
        "observe",
        "--server",
        &server,
        "--from-pod",
        "default/xwing",
        "-t",
        "drop",
        "--all",
        "-o",
        "json",
    ]);
    assert!(
        !drops.is_empty(),
        "the first node still answers through the relay"
    );
}

fn cmd_client(
    server: &str,
) -> schema::observer::observer_client::ObserverClient<tonic::transport::Channel> {
    let path = PathBuf::from(server.trim_start_matches("unix://"));
    let channel = tonic::transport::Endpoint::from_static("http://[::1]:4245")
        .connect_with_connector_lazy(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(&path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }));
    schema::observer::observer_client::ObserverClient::new(channel)
}

fn now() -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    prost_types::Timestamp {
        seconds: i64::try_from(now.as_secs()).expect("fits"),
        nanos: i32::try_from(now.subsec_nanos()).expect("fits"),
    }
}
