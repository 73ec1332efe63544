//! `myelin endpoint list`, `identity list`, `status`, `bpf policy get` and `policy get` against
//! the running agent, printed as the cilium CLI prints them.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use schema::agent_api::{
    AgentStatus, BpfPolicy, BpfPolicyGet, EndpointList, IdentityList, Request, Response,
};

use crate::client::Client;

pub(crate) fn endpoint_list(client: &Client) -> Result<()> {
    let Response::Endpoints(list) = client.request(&Request::EndpointList)? else {
        bail!("unexpected answer to endpoint-list");
    };
    print!("{}", render_endpoints(&list));
    Ok(())
}

pub(crate) fn identity_list(client: &Client) -> Result<()> {
    let Response::Identities(list) = client.request(&Request::IdentityList)? else {
        bail!("unexpected answer to identity-list");
    };
    print!("{}", render_identities(&list));
    Ok(())
}

pub(crate) fn status(client: &Client) -> Result<bool> {
    let Response::Status(status) = client.request(&Request::Status)? else {
        bail!("unexpected answer to status");
    };
    print!("{}", render_status(&status));
    Ok(status.reconcilers.iter().all(|r| r.state == "ok"))
}

pub(crate) fn bpf_policy_get(client: &Client, endpoint: u16) -> Result<()> {
    let Response::BpfPolicy(policy) =
        client.request(&Request::BpfPolicyGet(BpfPolicyGet { endpoint }))?
    else {
        bail!("unexpected answer to bpf-policy-get");
    };
    print!("{}", render_bpf_policy(&policy));
    Ok(())
}

pub(crate) fn policy_get(client: &Client) -> Result<()> {
    let Response::Policy(policy) = client.request(&Request::PolicyGet)? else {
        bail!("unexpected answer to policy-get");
    };
    println!("{}", serde_json::to_string_pretty(&policy.rules)?);
    println!("Revision: {}", policy.revision);
    Ok(())
}

/// Rows of cells, columns padded to their widest cell plus three spaces (cilium's tabwriter).
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}   ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn enabled(on: bool) -> String {
    if on { "Enabled" } else { "Disabled" }.to_owned()
}

pub(crate) fn render_endpoints(list: &EndpointList) -> String {
    let mut rows = vec![
        [
            "ENDPOINT",
            "POLICY (ingress)",
            "POLICY (egress)",
            "IDENTITY",
            "LABELS (source:key[=value])",
            "IPv4",
            "STATUS",
        ]
        .map(str::to_owned)
        .to_vec(),
        ["", "ENFORCEMENT", "ENFORCEMENT", "", "", "", ""]
            .map(str::to_owned)
            .to_vec(),
    ];
    for endpoint in &list.endpoints {
        let mut labels = endpoint.labels.iter();
        rows.push(vec![
            endpoint.id.to_string(),
            enabled(endpoint.ingress_enforcement),
            enabled(endpoint.egress_enforcement),
            endpoint.identity.map(|i| i.to_string()).unwrap_or_default(),
            labels.next().cloned().unwrap_or_default(),
            endpoint.ipv4.to_string(),
            endpoint.status.clone(),
        ]);
        for label in labels {
            rows.push(vec![
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                label.clone(),
            ]);
        }
    }
    table(&rows)
}

pub(crate) fn render_identities(list: &IdentityList) -> String {
    let mut rows = vec![vec!["ID".to_owned(), "LABELS".to_owned()]];
    for identity in &list.identities {
        let mut labels = identity.labels.iter();
        rows.push(vec![
            identity.id.to_string(),
            labels.next().cloned().unwrap_or_default(),
        ]);
        rows.extend(labels.map(|l| vec![String::new(), l.clone()]));
    }
    table(&rows)
}

pub(crate) fn render_bpf_policy(policy: &BpfPolicy) -> String {
    let mut rows = vec![
        [
            "POLICY",
            "DIRECTION",
            "LABELS (source:key[=value])",
            "PORT/PROTO",
            "PROXY PORT",
            "IDENTITY",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for entry in &policy.entries {
        let mut labels = entry.labels.iter();
        let verdict = match entry.verdict.as_str() {
            "allow" | "redirect" => "Allow",
            _ => "Deny",
        };
        rows.push(vec![
            verdict.to_owned(),
            entry.direction.clone(),
            labels.next().cloned().unwrap_or_default(),
            entry.port_protocol.clone(),
            entry.proxy_port.to_string(),
            entry.identity.to_string(),
        ]);
        rows.extend(labels.map(|l| vec![String::new(), String::new(), l.clone()]));
    }
    table(&rows)
}

pub(crate) fn render_status(status: &AgentStatus) -> String {
    let mut out = String::new();
    let degraded: Vec<_> = status
        .reconcilers
        .iter()
        .filter(|r| r.state != "ok")
        .collect();
    let _ = writeln!(
        out,
        "Agent:        {}",
        if degraded.is_empty() {
            "Ok"
        } else {
            "Degraded"
        }
    );
    let _ = writeln!(
        out,
        "IPAM:         {}/{} allocated from {}",
        status.addresses_total - status.addresses_free,
        status.addresses_total,
        status.pod_cidr
    );
    let _ = writeln!(out, "Endpoints:    {}", status.endpoints);
    let _ = writeln!(out, "Identities:   {}", status.identities);
    let _ = writeln!(out, "Policies:     {}", status.policies);
    let _ = writeln!(
        out,
        "Reconcilers:  {}/{} healthy",
        status.reconcilers.len() - degraded.len(),
        status.reconcilers.len()
    );
    for reconciler in degraded {
        let _ = writeln!(out, "  {}: {}", reconciler.name, reconciler.state);
        for failing in &reconciler.failing {
            let _ = writeln!(out, "    {failing}");
        }
    }
    out
}
